// The hadamard entry: the normalized randomized Hadamard transform of one vector at head size
// (128), hidden size (4096) and MLP widths (172 = stories260K's, one dense block; 11008 = 64·172,
// 14336 = 512·28; the dense factors come from shared/data/hadamard). Bytes are the floats read;
// ops the butterfly's additions plus the dense factor's multiply-adds (hadamard.h "Cost per
// vector"). The calls run back to back, so the dense factor's h stays hot in L2: it costs less
// here than inside a forward pass, where other work shares L2.
#include <cstdio>
#include <random>
#include <vector>

#include "bench/bench.h"
#include "engine/hadamard.h"
#include "quant/hadamard_tables.h"
#include "tools/shared_files.h"

namespace rotor::bench {

namespace {

void run(benchmark::State& state, Isa isa, const HadamardTransform* t) {
  const size_t n = t->size();
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  const HadamardPlan plan = t->plan(false);
  const KernelTable& k = kernels_for(isa);
  for (auto _ : state) {
    k.hadamard(plan, x.data(), 1, n);
    benchmark::DoNotOptimize(x.data());
  }
  const HadamardTransform::Factorization& f = t->factorization();
  set_work(state, 4.0 * n, static_cast<double>(n) * f.log2 + 2.0 * n * f.m);
}

}  // namespace

void register_hadamard(Isa isa) {
  // Built once for all ISAs; they live as long as the program.
  static const std::vector<HadamardTransform> transforms = [] {
    std::vector<HadamardTransform> ts;
    const std::string dir = find_shared_file("/data/hadamard");
    for (size_t n : {128, 172, 4096, 11008, 14336}) {
      const int m = HadamardTransform::factorize(n).m;
      if (m > 1 && dir.empty()) {
        std::fprintf(stderr, "hadamard/%zu skipped: shared/data/hadamard not found\n", n);
        continue;
      }
      ts.emplace_back(n, load_hadamard_matrix(dir, m), 1);
    }
    return ts;
  }();
  for (const HadamardTransform& t : transforms)
    benchmark::RegisterBenchmark(bench_name("hadamard", isa, std::to_string(t.size())).c_str(),
                                 run, isa, &t)
        ->Unit(benchmark::kMicrosecond);
}

}  // namespace rotor::bench
