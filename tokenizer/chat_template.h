// Chat templates: how a conversation (system prompt, user and assistant turns) becomes the
// text a model was tuned on. Four are known: llama2 ([INST] ... [/INST]), chatml
// (<|im_start|>role ... <|im_end|>), zephyr (<|user|> ... </s>) and plain, for models that are
// not chat-tuned: the system prompt and each user line start a new line and the answer
// continues the user's text.
//
// Rendered text writes the beginning- and end-of-sequence tokens as "<s>" and "</s>";
// tokenize_chat() turns those markers into the tokenizer's ids and encodes the rest. Every
// template begins the conversation with "<s>" (llama2 begins every user turn with it).
//
// A conversation renders as
//   start(system) + for each turn: user(text, first) + generation_prompt() + answer +
//   answer_end()
// so the text of earlier turns never changes when a turn is added: the KV cache of a
// conversation stays valid as it grows.
#pragma once
#include <string>
#include <vector>

namespace rotor {

class Tokenizer;

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

class ChatTemplate {
 public:
  enum class Kind { kPlain, kLlama2, kChatml, kZephyr };

  explicit ChatTemplate(Kind kind = Kind::kPlain, std::string system = "")
      : kind_(kind), system_(std::move(system)) {}
  // "llama2", "chatml", "zephyr" or "plain"; anything else is an Error listing them.
  static Kind kind_by_name(const std::string& name);
  // Recognizes a Hugging Face Jinja chat_template by its distinctive markers; false if unknown.
  static bool recognize(const std::string& jinja, Kind* kind);
  // The chat_template of tokenizer_config.json in a Hugging Face directory, recognized; plain
  // when the file, the field or the template is absent or unknown (`found` says which).
  static Kind from_hf_directory(const std::string& dir, std::string* found = nullptr);

  Kind kind() const { return kind_; }
  std::string name() const;
  const std::string& system() const { return system_; }

  // The pieces (see above).
  std::string start() const;
  std::string user(const std::string& text, bool first) const;
  std::string generation_prompt() const;
  std::string answer_end() const;
  // Strings that end an answer when the model writes them (the next turn's markers).
  std::vector<std::string> stop_strings() const;

  // A whole conversation: system messages (the first one wins over the template's own system
  // prompt) and alternating user / assistant turns; ends with the generation prompt when the
  // last message is the user's and add_generation_prompt is set. Errors on an unknown role.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

 private:
  Kind kind_;
  std::string system_;
};

// Text with "<s>" / "</s>" markers to token ids: markers become bos / eos, the text between
// them is encoded by the tokenizer.
std::vector<int> tokenize_chat(const Tokenizer& tok, const std::string& text, int bos, int eos);

}  // namespace rotor
