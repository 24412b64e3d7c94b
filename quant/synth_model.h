// Compact model files with random weights and a real model's shapes, for speed measurements
// without the real checkpoint. The packed codes, scales, zero points and block sums are drawn
// directly (no float weights exist at any point) and streamed to the file tensor by tensor, so
// memory stays at one tensor whatever the model's size. Deterministic for a given recipe.seed.
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <string>

#include "engine/config.h"
#include "engine/recipe.h"
#include "quant/quantized_matrix.h"
#include "quant/weight_quantizer.h"

namespace rotor {

// Random packed matrices: codes uniform over the 2^bits values, scales and zero points drawn
// around what N(0, 0.02) weights (as in real LLaMAs) would get, block sums to match; padding
// columns hold their group's zero point (0 for symmetric specs). Also used by the kernel
// micro-benchmarks.
class RandomPackedMatrices {
 public:
  explicit RandomPackedMatrices(uint64_t seed);
  QuantizedMatrix operator()(int rows, int cols, const WeightQuantSpec& spec);

 private:
  static double unit(uint64_t r);  // [0, 1) from the top 53 bits
  // n signed codes: each 64-bit draw gives 16 four-bit or 8 eight-bit codes.
  void fill_codes(int8_t* out, size_t n, int bits);

  std::mt19937_64 rng_;
};

// Writes `path` with config c (validated here) and the tokenizer bytes given; the recipe's
// w_bits (4|8), group, w_sym, a_bits, kv_bits, kv_k_group and seed are used; embedding and
// classifier are 8-bit, norms 1. The recipe's rotation and bdq add the online steps `rotor
// quantize` would record for them, with random contents of the same cost: R4 before down_proj
// for any rotation (and R3 on Q and K with a per-token K cache, kv_k_group 0), BDQ's down_proj
// scale fused into R4, and psot-layer's residual blocks. The Hadamard factors come from
// hadamard_dir (unused without a rotation).
// progress(done, total) follows the tensors written: the embedding, each layer, the classifier.
// Returns the file size.
uint64_t write_synth_model(const ModelConfig& c, const Recipe& recipe,
                           const std::string& tokenizer_bytes, const std::string& hadamard_dir,
                           const std::string& path,
                           const std::function<void(int done, int total)>& progress);

}  // namespace rotor
