#include "tools/chat_session.h"

#include <algorithm>
#include <chrono>

#include "engine/error.h"
#include "tools/stop_strings.h"

namespace rotor {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

CachedSession::CachedSession(const Model& model, const Tokenizer& tok, int ctx)
    : session_(model, ctx), tok_(tok) {}

void CachedSession::reset() {
  session_.reset();
  cached_.clear();
}

Answer CachedSession::answer(const std::vector<int>& prompt, Sampler& sampler,
                             const AnswerOptions& opts, const TextSink& on_text) {
  const ModelConfig& c = session_.model().config;
  if (prompt.empty()) throw Error("the prompt is empty");
  if (static_cast<int>(prompt.size()) > session_.ctx())
    throw Error("prompt of " + std::to_string(prompt.size()) +
                " tokens does not fit in the context of " + std::to_string(session_.ctx()) +
                " tokens");
  // Reuse the longest common prefix, but always run at least one token to get logits.
  size_t common = 0;
  while (common < cached_.size() && common < prompt.size() && cached_[common] == prompt[common])
    ++common;
  if (common == prompt.size()) --common;
  session_.rewind(static_cast<int>(common));
  cached_.resize(common);

  Answer a;
  a.prompt_tokens = static_cast<int>(prompt.size());
  a.prefilled = static_cast<int>(prompt.size() - common);
  auto t0 = std::chrono::steady_clock::now();
  const float* logits =
      session_.prefill(std::vector<int>(prompt.begin() + static_cast<long>(common), prompt.end()));
  cached_ = prompt;
  a.prefill_seconds = seconds_since(t0);
  sampler.observe(prompt);

  StreamDecoder decoder(tok_, opts.at_text_start);
  StopFilter filter(opts.stop);
  auto show = [&](const std::string& piece) {
    if (piece.empty()) return;
    a.text += piece;
    if (on_text) on_text(piece);
  };
  a.finish_reason = "length";
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < opts.max_tokens; ++i) {
    if (opts.cancelled && opts.cancelled()) {
      a.finish_reason = "cancelled";
      break;
    }
    const int token = sampler.sample(logits, c.vocab_size);
    if (token == c.eos_id) {
      a.finish_reason = "stop";
      break;
    }
    a.tokens.push_back(token);
    show(filter.push(decoder.push(token)));
    if (filter.stopped()) {
      a.finish_reason = "stop";
      break;
    }
    if (session_.pos() == session_.ctx()) {
      a.context_full = true;
      break;
    }
    logits = session_.decode(token);
    cached_.push_back(token);
    ++a.decode_steps;
  }
  a.decode_seconds = seconds_since(t0);
  if (!filter.stopped()) show(filter.push(decoder.flush()));
  show(filter.flush());
  return a;
}

ChatSession::ChatSession(const Model& model, const Tokenizer& tok, ChatTemplate tmpl, int ctx)
    : model_(model), tok_(tok), tmpl_(std::move(tmpl)), cache_(model, tok, ctx) {}

std::vector<int> ChatSession::encode(const std::string& text) const {
  return tokenize_chat(tok_, text, model_.config.bos_id, model_.config.eos_id);
}

std::vector<int> ChatSession::tokens(const std::string* pending) const {
  std::vector<int> out = encode(tmpl_.start());
  auto append = [&](const std::vector<int>& ids) { out.insert(out.end(), ids.begin(), ids.end()); };
  bool first = true;
  for (const Turn& t : turns_) {
    append(encode(tmpl_.user(t.user, first) + tmpl_.generation_prompt()));
    append(t.answer);
    append(encode(tmpl_.answer_end()));
    first = false;
  }
  if (pending) append(encode(tmpl_.user(*pending, first) + tmpl_.generation_prompt()));
  return out;
}

Answer ChatSession::say(const std::string& user, Sampler& sampler, const AnswerOptions& opts,
                        const TextSink& on_text) {
  const int ctx = cache_.ctx();
  const int room = std::max(1, std::min(opts.max_tokens, ctx / 4));
  dropped_ = 0;
  std::vector<int> prompt = tokens(&user);
  while (static_cast<int>(prompt.size()) + room > ctx && !turns_.empty()) {
    turns_.erase(turns_.begin());
    ++dropped_;
    prompt = tokens(&user);
  }
  if (static_cast<int>(prompt.size()) >= ctx)
    throw Error("this message is " + std::to_string(prompt.size()) +
                " tokens with the template, too long for the context of " +
                std::to_string(ctx) + " tokens");
  AnswerOptions o = opts;
  for (auto& s : tmpl_.stop_strings()) o.stop.push_back(s);
  Answer a = cache_.answer(prompt, sampler, o, on_text);
  turns_.push_back({user, a.tokens});
  return a;
}

}  // namespace rotor
