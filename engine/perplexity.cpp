#include "engine/perplexity.h"

#include <cmath>

#include "engine/error.h"
#include "engine/session.h"

namespace rotor {

PerplexityResult evaluate_perplexity(const Model& model, const std::vector<int>& ids, int ctx,
                                     const std::function<void(int, int)>& progress) {
  const ModelConfig& c = model.config;
  if (ctx < 2) throw Error("perplexity needs a context of at least 2 tokens, got " +
                           std::to_string(ctx));
  Session session(model, ctx);
  const int chunk = ctx - 1;
  const int windows = static_cast<int>(ids.size() / chunk);
  if (windows == 0)
    throw Error("the text has " + std::to_string(ids.size()) +
                " tokens, fewer than one window of " + std::to_string(chunk));

  const size_t V = c.vocab_size;
  std::vector<int> window(ctx);
  std::vector<float> logits;
  double total_nll = 0.0;
  for (int w = 0; w < windows; ++w) {
    window[0] = c.bos_id;
    std::copy_n(ids.begin() + static_cast<size_t>(w) * chunk, chunk, window.begin() + 1);
    session.reset();
    session.prefill(window, &logits);
    for (int t = 0; t < chunk; ++t) {  // logits row t predicts window[t + 1]
      const float* row = &logits[t * V];
      float max = row[0];
      for (size_t i = 1; i < V; ++i) max = row[i] > max ? row[i] : max;
      double sum = 0.0;
      for (size_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(row[i]) - max);
      total_nll += std::log(sum) + max - row[window[t + 1]];
    }
    if (progress) progress(w + 1, windows);
  }
  PerplexityResult r;
  r.windows = windows;
  r.ctx = ctx;
  r.tokens = static_cast<int64_t>(windows) * chunk;
  r.nll = total_nll / r.tokens;
  r.ppl = std::exp(r.nll);
  return r;
}

}  // namespace rotor
