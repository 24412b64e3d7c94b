// block_dots, the integer core of every quantized linear layer: one call over all rows, as
// GEMV (decode, 1 token) and GEMM (prefill). Weight bytes are the packed codes it reads. Also
// centered_dots (o_proj's decode) from memory, and the epilogue that turns dots into outputs,
// shared by every ISA.
#include <algorithm>
#include <random>
#include <vector>

#include "bench/bench.h"
#include "engine/zeroed_array.h"
#include "quant/synth_model.h"

namespace rotor::bench {

namespace {

struct Shape {
  int rows, cols;  // out × in
  int segment = 0;  // activation segment (kernel block): 0 = whole row, else per head (o_proj)
  int group = 0;    // weight columns per scale: 0 = per channel
};
// LLaMA-2-7B q/k/v/o, gate/up, down; TinyLlama gate/up.
const Shape kShapes[] = {{4096, 4096}, {11008, 4096}, {4096, 11008}, {5632, 2048}};
// o_proj, its input quantized per head: LLaMA-2-7B (head size 128), TinyLlama (64).
const Shape kHeadShapes[] = {{4096, 4096, 128}, {2048, 2048, 64}};

std::string shape_name(Shape s, int bits, int tokens) {
  return std::to_string(s.rows) + "x" + std::to_string(s.cols) +
         (s.segment > 0 ? "/b" + std::to_string(s.segment) : "") +
         (s.group > 0 ? "/g" + std::to_string(s.group) : "") + "/w" + std::to_string(bits) +
         "/t" + std::to_string(tokens);
}
// Prompt lengths for GEMM; the scalar reference only runs the shortest (it is that slow).
const int kPrefillTokens[] = {64, 512};

void run(benchmark::State& state, Isa isa, Shape shape, int bits, int tokens) {
  const QuantizedMatrix m =
      RandomPackedMatrices(1)(shape.rows, shape.cols, {bits, 0, false, shape.segment});
  const PackedMatrix w = m.view();
  std::mt19937 rng(2);
  std::vector<uint8_t> q(static_cast<size_t>(tokens) * w.cols_padded);
  for (uint8_t& v : q) v = static_cast<uint8_t>(rng());
  std::vector<int32_t> dots(static_cast<size_t>(tokens) * w.rows * w.blocks());
  const KernelTable& k = kernels_for(isa);
  for (auto _ : state) {
    k.block_dots(w, q.data(), w.cols_padded, tokens, 0, w.rows, dots.data());
    benchmark::DoNotOptimize(dots.data());
  }
  set_work(state, static_cast<double>(w.rows) * w.row_bytes(),
           2.0 * w.rows * w.cols_padded * tokens);
}

// GEMV with the weights coming from memory, as in decode: the call walks copies of the codes
// that together far exceed the last-level cache (the one above sees them cached after the
// first iteration, which measures the kernel, not the memory system). centered: through
// centered_dots, o_proj's decode with 4-bit activations less their zero points (a = q − z_x).
void run_from_memory(benchmark::State& state, Isa isa, Shape shape, int bits, bool centered) {
  const QuantizedMatrix m =
      RandomPackedMatrices(1)(shape.rows, shape.cols, {bits, 0, false, shape.segment});
  PackedMatrix w = m.view();
  const size_t bytes = static_cast<size_t>(w.rows) * w.row_bytes();
  const size_t copies = std::max<size_t>(2, (size_t{1} << 30) / bytes);
  // In 2 MB pages, as a model file's weights are mapped (engine/mapped_file.cpp).
  ZeroedArray<uint8_t> codes(copies * bytes, Pages::kHuge);
  for (size_t c = 0; c < copies; ++c) std::copy(w.codes, w.codes + bytes, &codes[c * bytes]);
  std::mt19937 rng(2);
  std::vector<uint8_t> q(w.cols_padded);
  std::vector<int8_t> a(w.cols_padded);
  for (uint8_t& v : q) v = static_cast<uint8_t>(rng());
  for (int8_t& v : a) v = static_cast<int8_t>(static_cast<int>(rng() % 31) - 15);
  std::vector<int32_t> dots(static_cast<size_t>(w.rows) * w.blocks());
  const KernelTable& k = kernels_for(isa);
  size_t c = 0;
  for (auto _ : state) {
    w.codes = &codes[c * bytes];
    c = (c + 1) % copies;
    if (centered)
      k.centered_dots(w, a.data(), 0, w.rows, dots.data());
    else
      k.block_dots(w, q.data(), w.cols_padded, 1, 0, w.rows, dots.data());
    benchmark::DoNotOptimize(dots.data());
  }
  set_work(state, static_cast<double>(bytes), 2.0 * w.rows * w.cols_padded);
}

// The epilogue of one decoded token (linear_epilogue: block dots to floats), over a layer's rows
// in tiles of 256 as decode calls it, its metadata and dots in cache. Bytes are the packed codes
// the layer's GEMV streams, so its GB/s compares with gemv_dram's: how much the epilogue adds.
void run_epilogue(benchmark::State& state, Shape s) {
  const QuantizedMatrix m = RandomPackedMatrices(1)(s.rows, s.cols, {4, s.group, false, s.segment});
  const PackedMatrix w = m.view();
  std::mt19937 rng(2);
  QuantizedActs a;
  a.tokens = 1;
  a.cols_padded = w.cols_padded;
  a.segment = s.segment > 0 ? s.segment : w.cols_padded;
  a.block = w.block;
  a.q.resize(w.cols_padded);
  for (uint8_t& v : a.q) v = static_cast<uint8_t>(rng() & 15);
  a.scale.assign(w.cols_padded / a.segment, 0.01f);
  for (int seg = 0; seg < w.cols_padded / a.segment; ++seg)
    a.zero.push_back(static_cast<int32_t>(rng() & 15));
  a.sums.assign(w.blocks(), 0);
  for (int j = 0; j < w.cols_padded; ++j) a.sums[j / w.block] += a.q[j];
  std::vector<int32_t> dots(static_cast<size_t>(w.rows) * w.blocks());
  for (int32_t& d : dots) d = static_cast<int32_t>(rng() % 2001) - 1000;
  std::vector<float> y(w.rows);
  constexpr int kTile = 256;  // QuantizedLinear's rows per kernel call in decode
  for (auto _ : state) {
    for (int r = 0; r < w.rows; r += kTile)
      linear_epilogue(w, a, 0, 1, r, std::min(w.rows, r + kTile),
                      &dots[static_cast<size_t>(r) * w.blocks()], false, y.data(), w.rows);
    benchmark::DoNotOptimize(y.data());
  }
  set_work(state, static_cast<double>(w.rows) * w.row_bytes(), 0.0);
}

}  // namespace

void register_epilogue() {
  // TinyLlama: gate/up and down per channel and in groups of 128; o_proj per head (64
  // columns), per channel and in groups of 128; LLaMA-2-7B o_proj (heads of 128).
  const Shape shapes[] = {{5632, 2048, 0, 0},    {5632, 2048, 0, 128}, {2048, 5632, 0, 128},
                          {2048, 2048, 64, 0},   {2048, 2048, 64, 128}, {4096, 4096, 128, 0}};
  for (const Shape& s : shapes)
    benchmark::RegisterBenchmark(("epilogue/shared/" + shape_name(s, 4, 1)).c_str(), run_epilogue,
                                 s)
        ->Unit(benchmark::kMicrosecond);
}

void register_linear(Isa isa) {
  auto add = [&](Shape s, int bits, int tokens) {
    const std::string name =
        bench_name(tokens == 1 ? "gemv" : "gemm", isa, shape_name(s, bits, tokens));
    benchmark::RegisterBenchmark(name.c_str(), run, isa, s, bits, tokens)
        ->Unit(benchmark::kMicrosecond);
  };
  for (const Shape& s : kShapes)
    for (int bits : {4, 8}) add(s, bits, 1);
  for (const Shape& s : kHeadShapes) add(s, 4, 1);
  auto add_dram = [&](const char* name, Shape s, bool centered) {
    benchmark::RegisterBenchmark(bench_name(name, isa, shape_name(s, 4, 1)).c_str(),
                                 run_from_memory, isa, s, 4, centered)
        ->Unit(benchmark::kMicrosecond);
  };
  for (const Shape& s : kShapes) add_dram("gemv_dram", s, false);
  for (const Shape& s : kHeadShapes) add_dram("gemv_dram", s, false);
  if (kernels_for(isa).centered_dots)
    for (const Shape& s : kHeadShapes) add_dram("gemv_centered_dram", s, true);
  for (const Shape& s : {kShapes[0], kShapes[1]})
    for (int tokens : kPrefillTokens)
      if (isa != Isa::kScalar || tokens == kPrefillTokens[0]) add(s, 4, tokens);
}

}  // namespace rotor::bench
