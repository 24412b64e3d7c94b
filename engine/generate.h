// The generation loop shared by `rotor run` and `rotor chat`: prefill a prompt, then sample
// and decode one token at a time. Every emitted token is fed back into the session, so the
// cache always holds the whole visible conversation.
#pragma once
#include <functional>
#include <vector>

#include "engine/sampler.h"
#include "engine/session.h"

namespace rotor {

struct GenerationStats {
  int prompt_tokens = 0;
  double prefill_seconds = 0.0;
  int generated = 0;
  int decode_steps = 0;
  double decode_seconds = 0.0;
  bool stopped_at_eos = false;
  bool context_full = false;

  double prefill_tok_s() const { return prefill_seconds > 0 ? prompt_tokens / prefill_seconds : 0; }
  double decode_tok_s() const { return decode_seconds > 0 ? decode_steps / decode_seconds : 0; }
};

// on_token is called for every generated token (EOS excluded) as soon as it is sampled.
GenerationStats generate(Session& session, Sampler& sampler, const std::vector<int>& prompt,
                         int max_new_tokens, const std::function<void(int)>& on_token);

}  // namespace rotor
