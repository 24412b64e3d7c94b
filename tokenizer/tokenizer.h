// SentencePiece tokenizer: encode, decode, and the pieces' raw bytes for streaming.
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace rotor {

class Tokenizer {
 public:
  // serialized = the bytes of a tokenizer.model; origin names it in error messages.
  Tokenizer(const std::string& serialized, const std::string& origin);
  ~Tokenizer();

  // Text to ids, without BOS.
  std::vector<int> encode(const std::string& text) const;
  // Ids to text, as SentencePiece renders it (leading dummy-prefix space removed).
  std::string decode(const std::vector<int>& ids) const;
  // The bytes one token adds to a stream: byte pieces give their byte, "▁" gives a space,
  // control tokens give nothing.
  std::string token_bytes(int id) const;

  int vocab_size() const;
  int bos_id() const;
  int eos_id() const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::vector<std::string> bytes_;  // token_bytes for every id, computed once
};

// Turns a token stream into printable text that is always valid UTF-8: bytes of a character
// split over several byte-fallback tokens are held until the character is complete.
class StreamDecoder {
 public:
  // at_text_start: the stream begins a text (right after BOS), so the space SentencePiece
  // prefixes to the first word is dropped, as decode() does.
  explicit StreamDecoder(const Tokenizer& tok, bool at_text_start = false)
      : tok_(tok), strip_space_(at_text_start) {}
  // Text that became complete with this token (possibly empty).
  std::string push(int id);
  // Whatever is still held; incomplete sequences become U+FFFD.
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool strip_space_;
  std::string pending_;
};

// Splits bytes into the longest prefix of complete UTF-8 (invalid bytes replaced by U+FFFD)
// and leaves in `rest` a trailing sequence that may still be completed.
std::string take_complete_utf8(const std::string& bytes, std::string* rest);

}  // namespace rotor
