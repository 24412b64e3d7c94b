// Calibration data for the quantizer: windows of a text, and the input Hessians
// H = 2·XᵀX of every linear layer's input gathered by running the source model over them.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/session.h"
#include "tokenizer/tokenizer.h"

namespace rotor {

// `windows` windows of [BOS] + (ctx − 1) tokens, picked from the text's consecutive chunks
// by a generator seeded with `seed` (all chunks, in order, when there are not more).
std::vector<std::vector<int>> calibration_windows(const Tokenizer& tok, const std::string& text,
                                                  int windows, int ctx, uint64_t seed, int bos);

// Something that studies the linear layers' inputs over calibration windows.
class CalibrationObserver : public ActivationObserver {
 public:
  // Called before window w's forward pass.
  virtual void start_window(int /*w*/) {}
  // Called after the last window.
  virtual void finish() {}
};

// Runs the model over the windows (each from position 0) with every observer watching the
// linear layers' inputs, calling progress(done, total) per window.
void run_calibration(const Model& model, const std::vector<std::vector<int>>& windows,
                     const std::vector<CalibrationObserver*>& observers,
                     const std::function<void(int, int)>& progress);

// The inputs of the linears inside the layers: all but the classifier's.
inline const std::vector<LinearInput> kLayerInputs = {
    LinearInput::kAttention, LinearInput::kAttentionOut, LinearInput::kMlp, LinearInput::kMlpDown};

// The Hessians of the inputs of `kinds` only (a pass for the classifier computes no layer's).
class HessianCollector final : public CalibrationObserver {
 public:
  HessianCollector(const ModelConfig& c, const std::vector<LinearInput>& kinds);
  void observe(int layer, LinearInput which, const float* x, int rows, int cols) override;
  void finish() override;  // mirrors the upper triangle dsyrk filled
  // [cols, cols], symmetric, for the linears that read `which` in `layer` (the classifier's:
  // layer n_layers).
  const std::vector<double>& hessian(int layer, LinearInput which) const;

 private:
  std::vector<std::array<std::vector<double>, kLinearInputs>> h_;  // [layer][LinearInput]
  std::vector<double> xd_;
};

// Keeps the inputs themselves: every `stride`-th row of each observed input, with the window
// each row came from (rows arrive window by window, in order).
class ActivationRecorder final : public CalibrationObserver {
 public:
  ActivationRecorder(int n_layers, std::vector<LinearInput> kinds, int stride);
  void observe(int layer, LinearInput which, const float* x, int rows, int cols) override;
  void start_window(int w) override { window_ = w; }
  struct Rows {
    int cols = 0;
    std::vector<float> data;     // [n, cols]
    std::vector<int> window_of;  // [n]
    int n() const { return cols ? static_cast<int>(data.size() / cols) : 0; }
  };
  const Rows& rows(int layer, LinearInput which) const;

 private:
  std::vector<std::array<Rows, kLinearInputs>> rows_;  // [layer, or n_layers: the classifier]
  std::vector<LinearInput> kinds_;
  int stride_;
  int window_ = -1;
};

}  // namespace rotor
