// Perplexity by the protocol of shared/docs/EVAL.md: windows of [BOS] + (ctx − 1) tokens,
// every chunk token scored given the tokens before it in its window.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/model.h"

namespace rotor {

struct PerplexityResult {
  double ppl = 0.0;
  double nll = 0.0;  // mean negative log-likelihood per scored token
  int64_t tokens = 0;
  int windows = 0;
  int ctx = 0;
};

// ids = the whole text tokenized without BOS. progress(done, total) is called per window.
PerplexityResult evaluate_perplexity(const Model& model, const std::vector<int>& ids, int ctx,
                                     const std::function<void(int, int)>& progress = {});

}  // namespace rotor
