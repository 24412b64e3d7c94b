// BDQ (METHODS.md §4): a diagonal scale s on a linear's input — activations divided by s,
// weight columns multiplied by s — chosen to flatten both sides for quantization, keeping the
// candidate with the smallest quantized layer-output error on calibration data.
#pragma once
#include <string>
#include <vector>

#include "engine/kernels/kernels.h"
#include "quant/weight_quantizer.h"

namespace rotor {

struct BdqProblem {
  const float* x = nullptr;  // calibration inputs [rows, cols] in the layer's final basis
  int rows = 0, cols = 0;
  std::vector<const float*> w;  // the linears reading x, each [outs[k], cols]
  std::vector<int> outs;
  // Columns sharing one scale (v→o under grouped-query attention: every query head of a group
  // reads the same value channels): slot[j] for column j; empty = a scale per column.
  std::vector<int> slot;
  WeightQuantSpec weights;
  ActQuantParams act;
};

struct BdqChoice {
  std::vector<float> s;     // per column (slots expanded)
  std::string method;       // "identity", "smooth a=0.50", "balanced"
  double error = 0.0;       // quantized layer-output error with s
  double error_identity = 0.0;  // ... and without (s = 1)
};

BdqChoice choose_bdq_scale(const BdqProblem& p);

}  // namespace rotor
