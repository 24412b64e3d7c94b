// The micro-benchmark program: registers every concept's benchmarks for each ISA this CPU
// runs, runs them (Google Benchmark flags apply, e.g. --benchmark_filter=linear/avx2), and
// ends with a compact markdown table of time, GB/s and GOP/s.
#include <cstdio>
#include <vector>

#include "bench/bench.h"

namespace rotor::bench {

void set_work(benchmark::State& state, double bytes, double ops) {
  using C = benchmark::Counter;
  state.counters["bytes"] = C(bytes, C::kIsIterationInvariantRate, C::OneK::kIs1000);
  if (ops > 0) state.counters["ops"] = C(ops, C::kIsIterationInvariantRate, C::OneK::kIs1000);
}

std::string bench_name(const char* name, Isa isa, const std::string& detail) {
  return std::string(name) + "/" + isa_name(isa) + "/" + detail;
}

namespace {

// The console output as usual, and the table at the end.
class TableReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.error_occurred) continue;
      auto rate = [&](const char* key) {
        auto it = r.counters.find(key);
        return it == r.counters.end() ? 0.0 : it->second.value / 1e9;
      };
      // CPU time, as the rates use: on a busy machine wall time also counts other processes.
      rows_.push_back({r.benchmark_name(), r.GetAdjustedCPUTime() * to_us(r.time_unit),
                       rate("bytes"), rate("ops")});
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\n| benchmark | CPU µs | GB/s | GOP/s |\n|---|---:|---:|---:|\n");
    for (const Row& r : rows_) {
      char ops[32] = "–";
      if (r.gop_s > 0) std::snprintf(ops, sizeof ops, "%.2f", r.gop_s);
      std::printf("| %s | %.2f | %.2f | %s |\n", r.name.c_str(), r.us, r.gb_s, ops);
    }
  }

 private:
  struct Row {
    std::string name;
    double us, gb_s, gop_s;
  };
  static double to_us(benchmark::TimeUnit u) {
    switch (u) {
      case benchmark::kNanosecond: return 1e-3;
      case benchmark::kMicrosecond: return 1.0;
      case benchmark::kMillisecond: return 1e3;
      default: return 1e6;
    }
  }
  std::vector<Row> rows_;
};

}  // namespace
}  // namespace rotor::bench

int main(int argc, char** argv) {
  using namespace rotor;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  bench::register_epilogue();
  bench::register_kv_store();
  for (Isa isa : supported_isas()) {
    bench::register_linear(isa);
    bench::register_activations(isa);
    bench::register_attention(isa);
    bench::register_hadamard(isa);
    bench::register_f16(isa);
    bench::register_checksum(isa);
  }
  bench::TableReporter table;
  benchmark::RunSpecifiedBenchmarks(&table);
  benchmark::Shutdown();
  return 0;
}
