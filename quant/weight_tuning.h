// End-to-end tuning of the quantized weights after GPTQ, with the float model as teacher: the
// scales (EfficientQAT's E2E-QP) and the rounding (AutoRound's learned rounding offsets) are
// learned by Adam to lower the KL divergence from the float model's next-token distribution to
// the quantized model's on the calibration windows. Every (row, group) scale s becomes s·e^θ;
// every code c₀ becomes clamp(c₀ + round(v)) with an offset v ∈ [−1, 1], learned through the
// rounding by the straight-through estimator. Zero points stay. GPTQ fits each linear to its
// own inputs; this fits the weights to what the whole model outputs. The text's own next tokens
// are never targets, only the teacher's distribution.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "quant/float_backprop.h"
#include "quant/quantized_matrix.h"

namespace rotor {

struct WeightTuningOptions {
  int epochs = 0;         // passes over the windows; 0 = no tuning
  float lr = 1e-3f;       // Adam's step on θ
  float round_lr = 0;     // Adam's first step on the rounding offsets (code units), decaying
                          // linearly to 0 so that they settle; 0 = codes fixed
  int batch = 4;          // windows per step
  uint64_t seed = 0;      // window order
};

// Adam's first step on the rounding offsets in `rotor quantize` (chosen on stories260K).
constexpr float kRoundingLearningRate = 3e-2f;

// One quantized linear of the student: its matrix (scales and codes rewritten) and the
// student's float copy of its dequantized weights (kept equal to the matrix).
struct TunedLinear {
  int layer = 0;
  std::vector<float> LayerGrads::*grad = nullptr;  // which gradient of FloatBackprop it reads
  QuantizedMatrix* matrix = nullptr;
  std::vector<float>* weights = nullptr;           // [rows, cols] in the student
};

struct WeightTuningReport {
  double kl_first = 0.0, kl_last = 0.0;  // mean KL per token over the first and last epoch
  size_t weights = 0, codes_changed = 0; // weights tuned; those whose code now differs from GPTQ's
};

// Tunes `linears` (all in `student`) towards `teacher`; progress(step, steps, KL) after each
// step (KL = the mean over the epoch so far, per token).
WeightTuningReport tune_weights(const FloatModel& teacher, FloatModel* student,
                                const std::vector<TunedLinear>& linears,
                                const std::vector<std::vector<int>>& windows, const WeightTuningOptions& opt,
                                const std::function<void(int, int, double)>& progress);

}  // namespace rotor
