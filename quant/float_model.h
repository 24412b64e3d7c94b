// A model's weights as plain float matrices that the quantizer transforms (folds norms, rotates,
// scales) before rounding, plus the online steps those transforms require. to_model() wraps it
// as an engine Model, so calibration always runs through the real forward pass.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/model.h"

namespace rotor {

// Every matrix is [out, in] row-major, as the engine's Linear computes y = x·Wᵀ.
struct FloatLayer {
  std::vector<float> attn_norm, wq, wk, wv, wo;
  std::vector<float> ffn_norm, w_gate, w_up, w_down;
  std::vector<float> down_scale;              // [hidden] online BDQ 1/s after R4; empty = none
  std::vector<float> resid_attn, resid_mlp;   // psot-layer residual blocks; empty = none
};

// An online Hadamard transform: size n = 2^k·m, seeded signs, the m×m factor (empty for m = 1).
struct HadamardSpec {
  int n = 0;  // 0 = not used
  uint64_t seed = 0;
  std::vector<int8_t> h_m;
};

struct FloatModel {
  ModelConfig config;                 // tied_embeddings is false: the classifier is explicit
  std::vector<float> embedding;       // [vocab, dim]
  std::vector<FloatLayer> layers;
  std::vector<float> final_norm;      // [dim]
  std::vector<float> classifier;      // [vocab, dim]
  HadamardSpec qk_hadamard;           // R3
  HadamardSpec down_hadamard;         // R4
  int resid_blocks = 1;
};

// Copies a loaded model's weights (any storage) into floats.
FloatModel float_model_of(const Model& source);
// An engine Model that borrows fm's storage (fm must outlive it and stay unchanged).
std::unique_ptr<Model> to_model(const FloatModel& fm);
// The Hadamard transform a spec describes.
std::unique_ptr<HadamardTransform> make_hadamard(const HadamardSpec& spec);

}  // namespace rotor
