// quantize_acts: the per-row (per-token) activation quantization in front of every integer
// linear layer, at hidden and MLP widths; swiglu: the MLP's activation, silu(gate)·up, at a
// tiny model's, TinyLlama's and LLaMA-2-7B's MLP widths. Bytes are the floats read.
#include <algorithm>
#include <random>
#include <vector>

#include "bench/bench.h"

namespace rotor::bench {

namespace {

void run(benchmark::State& state, Isa isa, int cols, int bits, int tokens) {
  const int cols_padded = (cols + kChunk - 1) / kChunk * kChunk;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(tokens) * cols);
  for (float& v : x) v = normal(rng);
  const ActQuantParams p{bits, cols_padded, cols_padded, 1.0f, 1.0f};
  QuantizedActs a;
  a.tokens = tokens;
  a.cols_padded = cols_padded;
  a.segment = cols_padded;
  a.block = cols_padded;
  a.q.resize(static_cast<size_t>(tokens) * cols_padded);
  a.scale.resize(tokens);
  a.zero.resize(tokens);
  a.sums.resize(tokens);
  const KernelTable& k = kernels_for(isa);
  for (auto _ : state) {
    k.quantize_acts(x.data(), cols, tokens, p, a);
    benchmark::DoNotOptimize(a.q.data());
  }
  set_work(state, 4.0 * x.size(), 0);
}

// The kernel works in place: each iteration first copies the same gate back (a cache-resident
// copy, part of the time), since repeated passes would shrink the values into subnormals.
void run_swiglu(benchmark::State& state, Isa isa, int n) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  std::vector<float> gate0(n), gate(n), up(n);
  for (float& v : gate0) v = 2.0f * normal(rng);
  for (float& v : up) v = normal(rng);
  const KernelTable& k = kernels_for(isa);
  for (auto _ : state) {
    std::copy(gate0.begin(), gate0.end(), gate.begin());
    k.swiglu(gate.data(), up.data(), n);
    benchmark::DoNotOptimize(gate.data());
    benchmark::ClobberMemory();
  }
  set_work(state, 8.0 * n, 0);
}

}  // namespace

void register_activations(Isa isa) {
  for (int cols : {4096, 11008})
    for (int bits : {8, 4})
      for (int tokens : {1, 64}) {
        const std::string detail = std::to_string(cols) + "/a" + std::to_string(bits) + "/t" +
                                   std::to_string(tokens);
        benchmark::RegisterBenchmark(bench_name("quantize_acts", isa, detail).c_str(), run, isa,
                                     cols, bits, tokens)
            ->Unit(benchmark::kMicrosecond);
      }
  for (int n : {172, 5632, 11008})
    benchmark::RegisterBenchmark(bench_name("swiglu", isa, std::to_string(n)).c_str(),
                                 run_swiglu, isa, n);
}

}  // namespace rotor::bench
