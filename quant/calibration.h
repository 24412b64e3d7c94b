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

class HessianCollector final : public ActivationObserver {
 public:
  explicit HessianCollector(const ModelConfig& c);
  void observe(int layer, LinearInput which, const float* x, int rows, int cols) override;
  // [cols, cols], symmetric, for the linears that read `which` in `layer`.
  const std::vector<double>& hessian(int layer, LinearInput which) const;
  // Runs the model over the windows, calling progress(done, total) per window.
  void collect(const Model& model, const std::vector<std::vector<int>>& windows,
               const std::function<void(int, int)>& progress);

 private:
  std::vector<std::array<std::vector<double>, 4>> h_;  // [layer][LinearInput], upper triangle filled
  std::vector<double> xd_;
};

}  // namespace rotor
