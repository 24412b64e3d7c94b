// SentencePiece wrapper and the streaming decoder that keeps printed text valid UTF-8.
#include <doctest/doctest.h>

#include "tests/helpers.h"
#include "tokenizer/tokenizer.h"

using namespace rotor;
using namespace rotor::test;

namespace {

Tokenizer load(const std::string& model_dir) {
  const std::string path = shared_dir() + "/models/" + model_dir + "/tokenizer.model";
  return Tokenizer(read_file(path), path);
}

bool valid_utf8(const std::string& s) {
  std::string rest;
  return take_complete_utf8(s, &rest) == s && rest.empty();
}

}  // namespace

TEST_CASE("utf8: complete characters pass, split ones wait, invalid bytes become U+FFFD") {
  std::string rest;
  CHECK(take_complete_utf8("abc", &rest) == "abc");
  CHECK(rest.empty());
  const std::string euro = "\xE2\x82\xAC";
  CHECK(take_complete_utf8("a" + euro.substr(0, 2), &rest) == "a");
  CHECK(rest == euro.substr(0, 2));
  CHECK(take_complete_utf8(rest + euro.substr(2), &rest) == euro);
  CHECK(take_complete_utf8("\x80x", &rest) == "\xEF\xBF\xBDx");           // stray continuation
  CHECK(take_complete_utf8("\xC0\xAF", &rest) == "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  CHECK(take_complete_utf8("\xE2(", &rest) == "\xEF\xBF\xBD(");          // broken sequence
  CHECK(take_complete_utf8("\xED\xA0\x80", &rest).find("\xED") == std::string::npos);  // surrogate
  CHECK(take_complete_utf8("\xF0\x9F\x99\x82", &rest) == "\xF0\x9F\x99\x82");
}

TEST_CASE("tokenizer: encode/decode round trip and special ids") {
  Tokenizer tok = load("stories260K");
  CHECK(tok.vocab_size() == 512);
  CHECK(tok.bos_id() == 1);
  CHECK(tok.eos_id() == 2);
  const std::string text = "Once upon a time, there was a little girl.";
  CHECK(tok.decode(tok.encode(text)) == text);
  CHECK(tok.token_bytes(tok.bos_id()).empty());
}

TEST_CASE("stream decoder: byte-fallback pieces stream as valid UTF-8 and add up to the text") {
  Tokenizer tok = load("llama2-tokenizer");
  const std::string text = "Grüße, 世界! Emoji: 🙂🚀 and ñ.";
  const std::vector<int> ids = tok.encode(text);
  int byte_tokens = 0;
  for (int id : ids) byte_tokens += tok.token_bytes(id).size() == 1 &&
                                    static_cast<unsigned char>(tok.token_bytes(id)[0]) >= 0x80;
  CHECK(byte_tokens >= 4);  // the emoji are spelled in byte pieces

  StreamDecoder stream(tok, /*at_text_start=*/true);
  std::string streamed;
  for (int id : ids) {
    const std::string chunk = stream.push(id);
    CHECK(valid_utf8(chunk));
    streamed += chunk;
  }
  streamed += stream.flush();
  CHECK(streamed == text);
  CHECK(streamed == tok.decode(ids));
}

TEST_CASE("stream decoder: an unfinished character is flushed as U+FFFD") {
  Tokenizer tok = load("llama2-tokenizer");
  std::vector<int> ids = tok.encode("🙂");
  StreamDecoder stream(tok);
  std::string out;
  for (size_t i = 0; i + 1 < ids.size(); ++i) out += stream.push(ids[i]);
  CHECK(out.find("\xF0") == std::string::npos);
  CHECK(stream.flush() == "\xEF\xBF\xBD");
}
