// The conversation machinery shared by `rotor chat` and `rotor serve`.
//
// CachedSession knows which tokens its KV cache holds, so a prompt that shares a prefix with
// them (the earlier turns of a conversation, or the previous request's prompt) only runs the
// new tokens. answer() then samples, streams valid UTF-8 through the stop strings, and can be
// cancelled between tokens.
//
// ChatSession is one conversation: a template, its turns, and the context policy (when a new
// turn does not fit, the oldest turns are dropped; the system prompt stays).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "engine/session.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace rotor {

struct AnswerOptions {
  int max_tokens = 256;
  std::vector<std::string> stop;      // the answer ends before any of these
  std::function<bool()> cancelled;    // polled before each token; true ends the answer
  bool at_text_start = false;         // the prompt is BOS alone (drop the first space)
};

struct Answer {
  std::string text;           // what was shown (stop string excluded)
  std::vector<int> tokens;    // every sampled token (EOS excluded)
  int prompt_tokens = 0;      // the prompt's length
  int prefilled = 0;          // prompt tokens actually run (the rest came from the cache)
  std::string finish_reason;  // "stop" (EOS or a stop string), "length", "cancelled"
  bool context_full = false;
  double prefill_seconds = 0, decode_seconds = 0;
  int decode_steps = 0;
  double decode_tok_s() const { return decode_seconds > 0 ? decode_steps / decode_seconds : 0; }
};

using TextSink = std::function<void(const std::string&)>;

class CachedSession {
 public:
  CachedSession(const Model& model, const Tokenizer& tok, int ctx = 0);
  int ctx() const { return session_.ctx(); }
  const std::vector<int>& cached() const { return cached_; }
  void reset();
  // Runs `prompt` (reusing the cached prefix) and samples an answer; on_text gets each piece
  // of text as it becomes safe to show. Throws Error when the prompt does not fit.
  Answer answer(const std::vector<int>& prompt, Sampler& sampler, const AnswerOptions& opts,
                const TextSink& on_text);

 private:
  Session session_;
  const Tokenizer& tok_;
  std::vector<int> cached_;  // the tokens at positions 0 .. session_.pos()
};

class ChatSession {
 public:
  ChatSession(const Model& model, const Tokenizer& tok, ChatTemplate tmpl, int ctx = 0);
  const ChatTemplate& chat_template() const { return tmpl_; }
  // Forgets every turn (the system prompt stays).
  void reset() { turns_.clear(); }
  int turns() const { return static_cast<int>(turns_.size()); }
  // Answers one user message. Oldest turns are dropped first if the conversation would leave
  // less than min(max_tokens, ctx/4) positions for the answer (dropped() says how many).
  // Throws Error when the message does not fit even alone.
  Answer say(const std::string& user, Sampler& sampler, const AnswerOptions& opts,
             const TextSink& on_text);
  int dropped() const { return dropped_; }
  // The tokens of the conversation so far (+ a pending user message), as the cache holds it.
  std::vector<int> tokens(const std::string* pending = nullptr) const;
  const std::vector<int>& cached() const { return cache_.cached(); }

 private:
  struct Turn {
    std::string user;
    std::vector<int> answer;
  };
  std::vector<int> encode(const std::string& text) const;

  const Model& model_;
  const Tokenizer& tok_;
  ChatTemplate tmpl_;
  CachedSession cache_;
  std::vector<Turn> turns_;
  int dropped_ = 0;
};

}  // namespace rotor
