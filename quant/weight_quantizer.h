// Weight quantization (METHODS.md §1): per-channel or per-group, symmetric or asymmetric,
// 4 or 8 bits, with a clip search per group; rounded to nearest (RTN) or by GPTQ.
#pragma once
#include <vector>

#include "quant/quantized_matrix.h"

namespace rotor {

struct WeightQuantSpec {
  int bits = 4;
  int group = 0;       // 0 = per output channel
  bool sym = false;
  int act_segment = 0; // activation segment of this layer's input (0 = whole row)
};

// The embedding's or classifier's layout at `bits` (4 or 8): 8-bit rows per channel, 4-bit rows
// in the layers' weight groups (`weight_group`), asymmetric.
inline WeightQuantSpec head_quant_spec(int bits, int weight_group) {
  return {bits, bits == 4 ? weight_group : 0, false, 0};
}

// Padded width and kernel block for a matrix of `cols` inputs under this spec.
void plan_layout(int cols, const WeightQuantSpec& spec, int* cols_padded, int* group, int* block);

// W is [rows, cols] row-major.
QuantizedMatrix quantize_rtn(const float* w, int rows, int cols, const WeightQuantSpec& spec);
// GPTQ with the layer's input Hessian H = 2·XᵀX ([cols, cols], row-major, double).
QuantizedMatrix quantize_gptq(const float* w, int rows, int cols, const std::vector<double>& hessian,
                              const WeightQuantSpec& spec);

}  // namespace rotor
