// End-to-end tuning of the quantized weights' scales after rounding (the idea of EfficientQAT's
// E2E-QP, with the float model as teacher): the integer codes and zero points stay, and every
// (row, group) scale s becomes s·e^θ, θ learned by Adam to lower the KL divergence from the
// float model's next-token distribution to the quantized model's on the calibration windows.
// GPTQ fits each linear to its own inputs; this fits the scales to what the whole model outputs.
// The text's own next tokens are never targets, only the teacher's distribution.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "quant/float_backprop.h"
#include "quant/quantized_matrix.h"

namespace rotor {

struct ScaleTuningOptions {
  int epochs = 0;      // passes over the windows; 0 = no tuning
  float lr = 1e-3f;    // Adam's step on θ
  int batch = 4;       // windows per step
  uint64_t seed = 0;   // window order
};

// One quantized linear of the student: its matrix (scales rewritten) and the student's float
// copy of its dequantized weights (kept equal to the matrix).
struct TunedLinear {
  int layer = 0;
  std::vector<float> LayerGrads::*grad = nullptr;  // which gradient of FloatBackprop it reads
  QuantizedMatrix* matrix = nullptr;
  std::vector<float>* weights = nullptr;           // [rows, cols] in the student
};

struct ScaleTuningReport {
  double kl_first = 0.0, kl_last = 0.0;  // mean KL per token over the first and last epoch
};

// Tunes the scales of `linears` (all in `student`) towards `teacher`; progress(step, steps, KL)
// after each step (KL = the mean over the epoch so far, per token).
ScaleTuningReport tune_scales(const FloatModel& teacher, FloatModel* student,
                              const std::vector<TunedLinear>& linears,
                              const std::vector<std::vector<int>>& windows, const ScaleTuningOptions& opt,
                              const std::function<void(int, int, double)>& progress);

}  // namespace rotor
