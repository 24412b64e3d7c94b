#include "tokenizer/chat_template.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/stat.h>

#include "engine/error.h"
#include "tokenizer/tokenizer.h"

namespace rotor {

ChatTemplate::Kind ChatTemplate::kind_by_name(const std::string& name) {
  if (name == "plain") return Kind::kPlain;
  if (name == "llama2") return Kind::kLlama2;
  if (name == "chatml") return Kind::kChatml;
  if (name == "zephyr") return Kind::kZephyr;
  throw Error("unknown chat template '" + name + "' (llama2, chatml, zephyr or plain)");
}

bool ChatTemplate::recognize(const std::string& jinja, Kind* kind) {
  auto has = [&](const char* s) { return jinja.find(s) != std::string::npos; };
  if (has("<|im_start|>")) *kind = Kind::kChatml;
  else if (has("<|user|>") && has("<|assistant|>")) *kind = Kind::kZephyr;
  else if (has("[INST]") && has("[/INST]")) *kind = Kind::kLlama2;
  else return false;
  return true;
}

ChatTemplate::Kind ChatTemplate::from_hf_directory(const std::string& dir, std::string* found) {
  auto say = [&](const std::string& s) {
    if (found) *found = s;
  };
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    say("no tokenizer_config.json (not a directory)");
    return Kind::kPlain;
  }
  std::ifstream in(dir + "/tokenizer_config.json", std::ios::binary);
  if (!in) {
    say("no tokenizer_config.json");
    return Kind::kPlain;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  std::string jinja;
  if (j.is_object() && j.contains("chat_template")) {
    const auto& t = j["chat_template"];
    if (t.is_string()) {
      jinja = t.get<std::string>();
    } else if (t.is_array()) {  // [{"name": "default", "template": "..."}, ...]
      for (const auto& e : t)
        if (e.is_object() && e.value("name", "") == "default" && e.contains("template") &&
            e["template"].is_string())
          jinja = e["template"].get<std::string>();
    }
  }
  if (jinja.empty()) {
    say("tokenizer_config.json has no chat_template");
    return Kind::kPlain;
  }
  Kind k;
  if (!recognize(jinja, &k)) {
    say("tokenizer_config.json's chat_template is not one rotor knows");
    return Kind::kPlain;
  }
  say("tokenizer_config.json's chat_template");
  return k;
}

std::string ChatTemplate::name() const {
  switch (kind_) {
    case Kind::kLlama2: return "llama2";
    case Kind::kChatml: return "chatml";
    case Kind::kZephyr: return "zephyr";
    case Kind::kPlain: break;
  }
  return "plain";
}

std::string ChatTemplate::start() const {
  const bool sys = !system_.empty();
  switch (kind_) {
    case Kind::kLlama2: return "";  // the system prompt goes inside the first [INST]
    case Kind::kChatml: return "<s>" + (sys ? "<|im_start|>system\n" + system_ + "<|im_end|>\n" : "");
    case Kind::kZephyr: return "<s>" + (sys ? "<|system|>\n" + system_ + "</s>\n" : "");
    case Kind::kPlain: break;
  }
  return "<s>" + (sys ? system_ + "\n" : "");
}

std::string ChatTemplate::user(const std::string& text, bool first) const {
  switch (kind_) {
    case Kind::kLlama2:
      return "<s>[INST] " +
             (first && !system_.empty() ? "<<SYS>>\n" + system_ + "\n<</SYS>>\n\n" : "") + text +
             " [/INST]";
    case Kind::kChatml: return "<|im_start|>user\n" + text + "<|im_end|>\n";
    case Kind::kZephyr: return "<|user|>\n" + text + "</s>\n";
    case Kind::kPlain: break;
  }
  return first ? text : "\n" + text;
}

std::string ChatTemplate::generation_prompt() const {
  switch (kind_) {
    case Kind::kChatml: return "<|im_start|>assistant\n";
    case Kind::kZephyr: return "<|assistant|>\n";
    default: return "";
  }
}

std::string ChatTemplate::answer_end() const {
  switch (kind_) {
    case Kind::kLlama2: return " </s>";
    case Kind::kChatml: return "<|im_end|>\n";
    case Kind::kZephyr: return "</s>\n";
    case Kind::kPlain: break;
  }
  return "";
}

std::vector<std::string> ChatTemplate::stop_strings() const {
  switch (kind_) {
    case Kind::kLlama2: return {"[INST]"};
    case Kind::kChatml: return {"<|im_end|>", "<|im_start|>"};
    case Kind::kZephyr: return {"<|user|>", "<|system|>"};
    case Kind::kPlain: break;
  }
  return {};
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt) const {
  ChatTemplate t = *this;
  for (const ChatMessage& m : messages)
    if (m.role == "system") {
      t.system_ = m.content;
      break;
    }
  std::string out = t.start();
  bool first = true, answered = true;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") continue;
    if (m.role == "user") {
      out += t.user(m.content, first) + t.generation_prompt();
      first = false;
      answered = false;
    } else if (m.role == "assistant") {
      // An assistant message with no user turn before it still renders as an answer.
      out += (t.kind_ == Kind::kLlama2 ? " " : "") + m.content + t.answer_end();
      answered = true;
    } else {
      throw Error("unknown message role '" + m.role + "' (system, user or assistant)");
    }
  }
  if (!answered && !add_generation_prompt) {
    // The generation prompt was written with the last user turn; take it back.
    const std::string gp = t.generation_prompt();
    out.erase(out.size() - gp.size());
  }
  return out;
}

std::vector<int> tokenize_chat(const Tokenizer& tok, const std::string& text, int bos, int eos) {
  std::vector<int> ids;
  size_t i = 0;
  while (i < text.size()) {
    const size_t b = text.find("<s>", i), e = text.find("</s>", i);
    const size_t next = std::min(b, e);
    const size_t end = next == std::string::npos ? text.size() : next;
    if (end > i)
      for (int id : tok.encode(text.substr(i, end - i))) ids.push_back(id);
    if (next == std::string::npos) break;
    ids.push_back(next == b ? bos : eos);
    i = next + (next == b ? 3 : 4);
  }
  return ids;
}

}  // namespace rotor
