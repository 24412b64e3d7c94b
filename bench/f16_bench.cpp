// The f16 kernels of psot-layer's residual blocks: vecmat_f16 as decode calls it (one task: a
// block's rows × a column range of it, from memory), and f16_to_f32 (prefill widens each block).
#include <algorithm>
#include <random>
#include <vector>

#include "bench/bench.h"

namespace rotor::bench {

namespace {

// Random f16 values of an orthogonal block's size (|m| < 1/4).
std::vector<uint16_t> random_f16(size_t n) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> code(0, 0x33FF), sign(0, 1);
  std::vector<uint16_t> m(n);
  for (uint16_t& h : m) h = static_cast<uint16_t>(code(rng) | (sign(rng) ? 0x8000 : 0));
  return m;
}

// Columns [0, cols) of a rows × ld block, cycling through copies of it that together far exceed
// the last-level cache, as decode reads each block once per token.
void vecmat_from_memory(benchmark::State& state, Isa isa, int rows, int cols, int ld) {
  const size_t block = static_cast<size_t>(rows) * ld;
  const size_t copies = std::max<size_t>(2, (size_t{1} << 30) / (2 * block));
  const std::vector<uint16_t> m = random_f16(copies * block);
  std::vector<float> x(rows, 0.5f), y(cols);
  const KernelTable& k = kernels_for(isa);
  size_t c = 0;
  for (auto _ : state) {
    k.vecmat_f16(x.data(), rows, 1, &m[c * block], rows, cols, ld, y.data(), cols);
    c = (c + 1) % copies;
    benchmark::DoNotOptimize(y.data());
  }
  set_work(state, 2.0 * rows * cols, 2.0 * rows * cols);
}

void widen(benchmark::State& state, Isa isa, size_t n) {
  const std::vector<uint16_t> h = random_f16(n);
  std::vector<float> out(n);
  const KernelTable& k = kernels_for(isa);
  for (auto _ : state) {
    k.f16_to_f32(h.data(), n, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  set_work(state, 2.0 * n, 0);
}

}  // namespace

void register_f16(Isa isa) {
  // LLaMA-2-7B's residual blocks (2 of 2048 × 2048): a decode task with two threads (half the
  // columns), and with one.
  for (int cols : {1024, 2048})
    benchmark::RegisterBenchmark(
        bench_name("vecmat_f16_dram", isa, "2048x" + std::to_string(cols)).c_str(),
        vecmat_from_memory, isa, 2048, cols, 2048)
        ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark(bench_name("f16_to_f32", isa, "2048x2048").c_str(), widen, isa,
                               size_t{2048} * 2048)
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace rotor::bench
