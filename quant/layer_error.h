// What a quantized linear layer gets wrong on calibration data, computed exactly as the engine
// would run it: activations through the scalar reference quantizer (the kernels' definition),
// weights dequantized. Used to choose activation clip factors and BDQ scales.
#pragma once
#include <vector>

#include "engine/kernels/kernels.h"
#include "quant/weight_quantizer.h"

namespace rotor {

// out[rows, cols] = the engine's quantize-then-dequantize of x[rows, cols] (bits 4/8; 16 copies).
void fake_quantize_acts(const float* x, int rows, int cols, const ActQuantParams& p, float* out);

// The weights as the engine will see them: W[rows, cols] quantized by RTN and dequantized.
std::vector<float> fake_quantize_weights(const float* w, int rows, int cols,
                                         const WeightQuantSpec& spec);

// ‖fq(x)·Wqᵀ − x·Wᵀ‖² over x[rows, cols]; w is the float reference [out, cols], wq what the
// engine multiplies with (dequantized weights).
double layer_output_error(const float* x, int rows, int cols, const float* w, const float* wq,
                          int out, const ActQuantParams& act);

// The activation clip factors (c_min, c_max) ∈ {1, 0.95, …, 0.55}² with the smallest
// layer_output_error over the linears in `w`/`wq` (all reading x). Returns act with the clips set.
ActQuantParams choose_act_clip(const float* x, int rows, int cols,
                               const std::vector<const float*>& w,
                               const std::vector<const float*>& wq,
                               const std::vector<int>& outs, ActQuantParams act);

}  // namespace rotor
