// The float LLaMA forward pass of a FloatModel over one window with its activations kept, and
// the backward pass that gives the loss gradient of every layer's linear weights: what
// end-to-end tuning of quantized weights needs (quant/weight_tuning.h). It computes the engine's
// function with float weights (R3 is left out: it cancels in q·kᵀ), which the tests check, and
// its gradients are checked against finite differences.
#pragma once
#include <memory>
#include <vector>

#include "engine/hadamard.h"
#include "engine/ops.h"
#include "quant/float_model.h"

namespace rotor {

// The loss gradient of one layer's linear weights, [out, in] like the weights.
struct LayerGrads {
  std::vector<float> wq, wk, wv, wo, w_gate, w_up, w_down;
};

struct ModelGrads {
  ModelGrads() = default;
  explicit ModelGrads(const FloatModel& fm);  // zeros shaped like fm's linears
  std::vector<LayerGrads> layers;
  void zero();
};

class FloatBackprop {
 public:
  // Borrows fm: its weights may change between windows, its shapes may not.
  explicit FloatBackprop(const FloatModel& fm);

  // Logits [T, vocab] of one window of T ≤ max_seq_len tokens; keeps the activations.
  const std::vector<float>& forward(const std::vector<int>& tokens);
  // Adds the weights' gradients for the last forward() window to grads (shaped on first use),
  // given dL/dlogits [T, vocab]. Only the layers' linears get gradients.
  void backward(const std::vector<float>& dlogits, ModelGrads* grads);

 private:
  struct Saved {  // one layer's activations, rows = tokens
    std::vector<float> x, inv_rms1, a, q, k, v, probs, att;  // q, k after RoPE; probs [H, T, T]
    std::vector<float> x1, inv_rms2, b, gate, up, down_in;   // down_in after R4 and BDQ's 1/s
  };
  void attention_forward(Saved& s) const;
  // dq, dk, dv from datt (each overwritten).
  void attention_backward(const Saved& s, const float* datt, float* dq, float* dk, float* dv) const;

  const FloatModel& fm_;
  Rope rope_;
  std::unique_ptr<HadamardTransform> down_rotation_;  // R4, null when absent
  int T_ = 0;
  std::vector<Saved> saved_;
  std::vector<float> final_x_, final_inv_rms_, final_out_, logits_;
};

}  // namespace rotor
