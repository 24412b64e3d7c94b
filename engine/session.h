// One conversation with a model: the KV cache, the scratch buffers, and the two entry points
// of the forward pass. prefill() runs a block of tokens as matrix-matrix products; decode()
// runs one token. Both continue at pos() and share every step of the LLaMA block.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/ops.h"
#include "engine/step_profile.h"
#include "engine/zeroed_array.h"

namespace rotor {

// The inputs of the linear layers, for tools that study them (the quantizer's calibration).
// The classifier's is shown as layer n_layers's.
enum class LinearInput { kAttention, kAttentionOut, kMlp, kMlpDown, kClassifier };
constexpr int kLinearInputs = 5;
class ActivationObserver {
 public:
  virtual ~ActivationObserver() = default;
  // x is [rows, cols]: the input of the linears of `which` in `layer`.
  virtual void observe(int layer, LinearInput which, const float* x, int rows, int cols) = 0;
};

class Session {
 public:
  // ctx = 0 uses the model's max positions; a larger ctx than that is an error.
  explicit Session(const Model& model, int ctx = 0);

  int ctx() const { return ctx_; }
  int pos() const { return pos_; }
  const Model& model() const { return model_; }
  // Forgets every position.
  void reset() { pos_ = 0; }
  // Keeps the first `pos` positions and forgets the rest (0 <= pos <= pos()), so a
  // conversation that shares a prefix with the cache continues from there.
  void rewind(int pos);
  // Advances pos() by n positions whose cached keys and values are random (seeded) instead of
  // computed by the model: how `rotor bench --depth` measures decode over a long context
  // without prefilling it (attention's cost does not depend on the values). Throws Error when
  // they do not fit in the context.
  void fill_context(int n, uint64_t seed);
  // Shows every linear layer's input to `observer` (nullptr to stop).
  void set_observer(ActivationObserver* observer) { observer_ = observer; }
  // Adds each step's time of every later forward pass to `profile` (nullptr to stop).
  void set_profile(StepProfile* profile) { profile_ = profile; }

  // Runs tokens at positions pos() .. pos()+n-1 and returns the logits after the last one
  // (vocab floats, valid until the next call). With all_logits, also returns [n, vocab].
  // Throws Error when the tokens do not fit in the context or an id is outside the vocabulary.
  const float* prefill(const std::vector<int>& tokens, std::vector<float>* all_logits = nullptr);
  const float* decode(int token);

 private:
  // The transformer on rows tokens[0..n) at positions pos_.. ; logits for the last
  // `logit_rows` rows land in logits_.
  void forward(const int* tokens, int n, int logit_rows);
  void check_fits(const int* tokens, int n) const;

  const Model& model_;
  const ModelConfig& c_;
  int ctx_;
  int max_batch_;
  int pos_ = 0;
  ActivationObserver* observer_ = nullptr;
  StepProfile* profile_ = nullptr;
  Rope rope_;
  KvCache cache_;
  // Scratch, sized for max_batch_ rows (a short prompt touches only its first rows' pages).
  ZeroedArray<float> x_, xb_, q_, k_, v_, att_, gate_, up_, logits_;
  std::vector<float> scores_;  // attention scores: ctx_ floats per worker
};

}  // namespace rotor
