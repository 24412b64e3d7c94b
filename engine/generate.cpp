#include "engine/generate.h"

#include <chrono>

namespace rotor {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GenerationStats generate(Session& session, Sampler& sampler, const std::vector<int>& prompt,
                         int max_new_tokens, const std::function<void(int)>& on_token) {
  const ModelConfig& c = session.model().config;
  GenerationStats s;
  s.prompt_tokens = static_cast<int>(prompt.size());
  sampler.observe(prompt);
  auto t0 = std::chrono::steady_clock::now();
  const float* logits = session.prefill(prompt);
  s.prefill_seconds = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < max_new_tokens; ++i) {
    const int token = sampler.sample(logits, c.vocab_size);
    if (token == c.eos_id) {
      s.stopped_at_eos = true;
      break;
    }
    ++s.generated;
    on_token(token);
    if (session.pos() == session.ctx()) {
      s.context_full = true;
      break;
    }
    logits = session.decode(token);
    ++s.decode_steps;
  }
  s.decode_seconds = seconds_since(t0);
  return s;
}

}  // namespace rotor
