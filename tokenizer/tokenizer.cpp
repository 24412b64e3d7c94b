#include "tokenizer/tokenizer.h"

#include <sentencepiece_processor.h>

#include "engine/error.h"

namespace rotor {

namespace {
const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
const std::string kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's space
}  // namespace

Tokenizer::Tokenizer(const std::string& serialized, const std::string& origin)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  auto status = sp_->LoadFromSerializedProto(serialized);
  if (!status.ok()) throw Error(origin + ": not a SentencePiece model (" + status.ToString() + ")");
  const int n = sp_->GetPieceSize();
  bytes_.resize(n);
  for (int id = 0; id < n; ++id) {
    const std::string& piece = sp_->IdToPiece(id);
    if (sp_->IsControl(id)) continue;
    if (sp_->IsByte(id)) {  // "<0xAB>"
      bytes_[id] = std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
    } else if (sp_->IsUnknown(id)) {
      bytes_[id] = " \xE2\x81\x87 ";  // SentencePiece's rendering of <unk>
    } else {
      std::string text;
      for (size_t i = 0; i < piece.size();) {
        if (piece.compare(i, kSpaceMarker.size(), kSpaceMarker) == 0) {
          text += ' ';
          i += kSpaceMarker.size();
        } else {
          text += piece[i++];
        }
      }
      bytes_[id] = text;
    }
  }
}

Tokenizer::~Tokenizer() = default;

std::vector<int> Tokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  auto status = sp_->Encode(text, &ids);
  if (!status.ok()) throw Error("cannot tokenize: " + status.ToString());
  return ids;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::string text;
  auto status = sp_->Decode(ids, &text);
  if (!status.ok()) throw Error("cannot detokenize: " + status.ToString());
  return text;
}

std::string Tokenizer::token_bytes(int id) const {
  return id >= 0 && id < static_cast<int>(bytes_.size()) ? bytes_[id] : std::string();
}

int Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }
int Tokenizer::bos_id() const { return sp_->bos_id(); }
int Tokenizer::eos_id() const { return sp_->eos_id(); }

std::string take_complete_utf8(const std::string& bytes, std::string* rest) {
  std::string out;
  size_t i = 0;
  const size_t n = bytes.size();
  while (i < n) {
    const unsigned char b = static_cast<unsigned char>(bytes[i]);
    size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || (len == 2 && b < 0xC2) || (len == 4 && b > 0xF4)) {  // not a lead byte
      out += kReplacement;
      ++i;
      continue;
    }
    size_t have = 1;
    bool bad = false;
    while (have < len && i + have < n) {
      const unsigned char cb = static_cast<unsigned char>(bytes[i + have]);
      // Second-byte limits exclude overlong forms, surrogates and code points past U+10FFFF.
      unsigned char lo = 0x80, hi = 0xBF;
      if (have == 1) {
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
      }
      if (cb < lo || cb > hi) {
        bad = true;
        break;
      }
      ++have;
    }
    if (bad) {
      out += kReplacement;
      i += have;
      continue;
    }
    if (have < len) {  // incomplete at the end: may be completed by the next token
      *rest = bytes.substr(i);
      return out;
    }
    out.append(bytes, i, len);
    i += len;
  }
  rest->clear();
  return out;
}

std::string StreamDecoder::push(int id) {
  pending_ += tok_.token_bytes(id);
  if (strip_space_ && !pending_.empty()) {
    if (pending_[0] == ' ') pending_.erase(0, 1);
    strip_space_ = false;
  }
  std::string rest;
  std::string ready = take_complete_utf8(pending_, &rest);
  pending_ = rest;
  return ready;
}

std::string StreamDecoder::flush() {
  std::string out;
  if (!pending_.empty()) out = kReplacement;
  pending_.clear();
  return out;
}

}  // namespace rotor
