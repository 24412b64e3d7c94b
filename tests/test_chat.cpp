// Chat: each template renders hand-checked text, Hugging Face templates are recognized, stop
// strings never leak, and a conversation kept in the KV cache turn by turn produces the same
// tokens as running the whole conversation at once (greedy).
#include <doctest/doctest.h>

#include "engine/error.h"
#include "engine/import/load_model.h"
#include "tests/helpers.h"
#include "tokenizer/chat_template.h"
#include "tools/chat_session.h"
#include "tools/stop_strings.h"

using namespace rotor;
using namespace rotor::test;

namespace {
const std::vector<ChatMessage> kConversation = {{"system", "Be brief."},
                                                {"user", "Hi"},
                                                {"assistant", "Hello!"},
                                                {"user", "Name a color."}};

ChatTemplate make(const char* name) { return ChatTemplate(ChatTemplate::kind_by_name(name)); }
}  // namespace

TEST_CASE("chat templates render hand-checked prompts") {
  CHECK(make("llama2").render(kConversation, true) ==
        "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s>"
        "<s>[INST] Name a color. [/INST]");
  CHECK(make("chatml").render(kConversation, true) ==
        "<s><|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\n");
  CHECK(make("zephyr").render(kConversation, true) ==
        "<s><|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n"
        "<|user|>\nName a color.</s>\n<|assistant|>\n");
  CHECK(make("plain").render(kConversation, true) == "<s>Be brief.\nHiHello!\nName a color.");

  // Without a system prompt, and without the generation prompt.
  const std::vector<ChatMessage> one = {{"user", "Hi"}};
  CHECK(make("llama2").render(one, true) == "<s>[INST] Hi [/INST]");
  CHECK(make("chatml").render(one, false) == "<s><|im_start|>user\nHi<|im_end|>\n");
  CHECK(make("zephyr").render(one, true) == "<s><|user|>\nHi</s>\n<|assistant|>\n");
  CHECK(make("plain").render(one, true) == "<s>Hi");
  // The template's own system prompt, unless the messages bring one.
  CHECK(ChatTemplate(ChatTemplate::Kind::kChatml, "S").render(one, true) ==
        "<s><|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n");

  CHECK_THROWS_AS(ChatTemplate::kind_by_name("vicuna"), Error);
  CHECK_THROWS_AS(make("plain").render({{"tool", "x"}}, true), Error);
}

TEST_CASE("chat templates: the pieces add up to render()") {
  for (const char* name : {"llama2", "chatml", "zephyr", "plain"}) {
    CAPTURE(name);
    ChatTemplate t(ChatTemplate::kind_by_name(name), "Be brief.");
    const std::vector<ChatMessage> msgs(kConversation.begin() + 1, kConversation.end());
    const std::string answer = std::string(name) == "llama2" ? " Hello!" : "Hello!";
    CHECK(t.render(msgs, true) == t.start() + t.user("Hi", true) + t.generation_prompt() +
                                      answer + t.answer_end() + t.user("Name a color.", false) +
                                      t.generation_prompt());
  }
}

TEST_CASE("chat templates: Hugging Face chat_template recognition") {
  ChatTemplate::Kind k;
  REQUIRE(ChatTemplate::recognize(
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
      "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}",
      &k));
  CHECK(k == ChatTemplate::Kind::kChatml);
  REQUIRE(ChatTemplate::recognize(
      "{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}", &k));
  CHECK(k == ChatTemplate::Kind::kLlama2);
  REQUIRE(ChatTemplate::recognize("{{ '<|user|>\n' + m + eos_token }}{{ '<|assistant|>' }}", &k));
  CHECK(k == ChatTemplate::Kind::kZephyr);
  CHECK_FALSE(ChatTemplate::recognize("{{ messages }}", &k));

  TempDir tmp;
  std::string why;
  CHECK(ChatTemplate::from_hf_directory(tmp.path(), &why) == ChatTemplate::Kind::kPlain);
  CHECK(why == "no tokenizer_config.json");
  write_file(tmp.file("tokenizer_config.json"),
             R"({"chat_template": "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}"})");
  CHECK(ChatTemplate::from_hf_directory(tmp.path(), &why) == ChatTemplate::Kind::kChatml);
  write_file(tmp.file("tokenizer_config.json"), R"({"chat_template": "{{ messages }}"})");
  CHECK(ChatTemplate::from_hf_directory(tmp.path(), &why) == ChatTemplate::Kind::kPlain);
  CHECK(why.find("not one rotor knows") != std::string::npos);
  write_file(tmp.file("tokenizer_config.json"), "{ not json");
  CHECK(ChatTemplate::from_hf_directory(tmp.path(), &why) == ChatTemplate::Kind::kPlain);
}

TEST_CASE("stop strings: nothing of a stop string is shown, text around it is") {
  StopFilter f({"<|im_end|>", "STOP"});
  std::string shown;
  for (const char* piece : {"Hel", "lo <", "|im", "_e"}) shown += f.push(piece);
  CHECK(shown == "Hello ");  // "<|im_e" is held: it may become the stop string
  CHECK_FALSE(f.stopped());
  shown += f.push("nd|> more");
  CHECK(f.stopped());
  CHECK(shown == "Hello ");
  CHECK(f.push("x").empty());
  CHECK(f.flush().empty());

  StopFilter g({"STOP"});
  CHECK(g.push("a ST") == "a ");
  CHECK(g.push("ART") == "START");  // not a stop after all: released
  CHECK(g.push("ST") == "");
  CHECK(g.flush() == "ST");

  StopFilter none({});
  CHECK(none.push("abc") == "abc");
}

namespace {
struct TestModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tok;
};
TestModel load_stories() {
  TestModel m;
  m.model = load_model(llama2c_path("stories260K"));
  m.tok = std::make_unique<Tokenizer>(m.model->tokenizer_proto, m.model->tokenizer_path);
  m.model->config.bos_id = m.tok->bos_id();
  m.model->config.eos_id = m.tok->eos_id();
  return m;
}
}  // namespace

TEST_CASE("chat: turns kept in the KV cache give the tokens of the whole conversation run anew") {
  TestModel m = load_stories();
  const SamplingParams greedy{0.0f, 0, 1.0f, 0};
  const std::vector<std::string> lines = {"Once upon a time", "The dog said", "Then they ran"};
  for (const char* name : {"plain", "llama2", "chatml", "zephyr"}) {
    CAPTURE(name);
    ChatSession chat(*m.model, *m.tok, ChatTemplate(ChatTemplate::kind_by_name(name), "Tell a story."));
    Sampler sampler(greedy);
    AnswerOptions opts;
    opts.max_tokens = 24;
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::vector<int> before = chat.cached();
      const std::vector<int> prompt = chat.tokens(&lines[i]);
      Answer a = chat.say(lines[i], sampler, opts, nullptr);
      CHECK(a.tokens.size() > 0);
      if (i > 0) {
        // Only the new turn ran: the earlier turns came from the cache.
        CHECK(a.prefilled < a.prompt_tokens);
        CHECK(a.prefilled <= a.prompt_tokens - static_cast<int>(before.size()) + 1);
      }
      // The same conversation, run from scratch in a fresh session.
      CachedSession fresh(*m.model, *m.tok);
      Sampler s2(greedy);
      AnswerOptions o2 = opts;
      o2.stop = ChatTemplate(ChatTemplate::kind_by_name(name)).stop_strings();
      Answer b = fresh.answer(prompt, s2, o2, nullptr);
      CHECK(b.prefilled == static_cast<int>(prompt.size()));
      CHECK(a.tokens == b.tokens);
      CHECK(a.text == b.text);
    }
    CHECK(chat.turns() == 3);
  }
}

TEST_CASE("chat: a full context drops the oldest turns, never fails") {
  TestModel m = load_stories();
  ChatSession chat(*m.model, *m.tok, ChatTemplate(ChatTemplate::Kind::kLlama2, "Be kind."), 64);
  Sampler sampler({0.0f, 0, 1.0f, 0});
  AnswerOptions opts;
  opts.max_tokens = 20;
  int dropped = 0;
  for (int i = 0; i < 10; ++i) {
    Answer a = chat.say("Once upon a time", sampler, opts, nullptr);
    CHECK(a.prompt_tokens + static_cast<int>(a.tokens.size()) <= 65);
    dropped += chat.dropped();
    // The system prompt is always there.
    CHECK(chat.tokens().size() > 0);
  }
  CHECK(dropped > 0);
  CHECK(chat.turns() < 10);
  // A message too long for the context alone is refused, and the chat goes on.
  CHECK_THROWS_AS(chat.say(std::string(400, 'a'), sampler, opts, nullptr), Error);
  CHECK(chat.say("Hi", sampler, opts, nullptr).tokens.size() > 0);
}
