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

// Per-segment clips for an input quantized per segment (o_proj: per head), refined from act's
// shared pair by coordinate descent: each segment in turn takes the pair from the same grid
// that minimizes the total output error with the other segments fixed. Returns act with
// `segments` (the engine's count, cols_padded / segment) entries in segment_clips, those past
// the logical columns holding the shared pair, or with none if no segment does better with a
// pair of its own. Never worse than the shared pair on x.
ActQuantParams choose_segment_clips(const float* x, int rows, int cols,
                                    const std::vector<const float*>& w,
                                    const std::vector<const float*>& wq,
                                    const std::vector<int>& outs, ActQuantParams act,
                                    int segments);

}  // namespace rotor
