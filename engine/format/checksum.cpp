#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/format/rotor_format.h"

namespace rotor::format {

namespace {
constexpr uint64_t kP3 = 0x165667B19E3779F9ull;

inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint64_t lane(uint64_t acc, uint64_t v) { return rotl(acc + v * kChecksumP2, 31) * kChecksumP1; }
}  // namespace

void checksum_stripes(uint64_t lanes[4], const uint8_t* p, size_t n) {
  // The lanes in locals: p is bytes, which may alias anything, so lanes itself would go
  // through memory at every step (at a third of the speed).
  uint64_t a = lanes[0], b = lanes[1], c = lanes[2], d = lanes[3];
  for (const uint8_t* end = p + n; p < end; p += 32) {
    a = lane(a, load64(p));
    b = lane(b, load64(p + 8));
    c = lane(c, load64(p + 16));
    d = lane(d, load64(p + 24));
  }
  lanes[0] = a;
  lanes[1] = b;
  lanes[2] = c;
  lanes[3] = d;
}

Checksum::Checksum() : Checksum(kChecksumSeed, 0) {}

Checksum::Checksum(const uint64_t lanes[4], uint64_t total)
    : lanes_{lanes[0], lanes[1], lanes[2], lanes[3]}, total_(total) {}

void Checksum::update(const void* data, size_t size) {
  if (size == 0) return;  // data may be null then (an empty section's chunk list)
  const uint8_t* p = static_cast<const uint8_t*>(data);
  total_ += size;
  if (pending_ > 0) {  // complete the stripe left over from the last call first
    const size_t take = std::min(size, sizeof tail_ - pending_);
    std::memcpy(tail_ + pending_, p, take);
    pending_ += take;
    p += take;
    size -= take;
    if (pending_ < sizeof tail_) return;
    checksum_stripes(lanes_, tail_, sizeof tail_);
    pending_ = 0;
  }
  const size_t whole = size / 32 * 32;
  checksum_stripes(lanes_, p, whole);
  pending_ = size - whole;
  std::memcpy(tail_, p + whole, pending_);
}

uint64_t Checksum::digest() const {
  const uint64_t a = lanes_[0], b = lanes_[1], c = lanes_[2], d = lanes_[3];
  uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + total_;
  const uint8_t* p = tail_;
  const uint8_t* end = tail_ + pending_;
  for (; end - p >= 8; p += 8) h = rotl(h ^ lane(0, load64(p)), 27) * kChecksumP1 + kP3;
  for (; p < end; ++p) h = rotl(h ^ (*p * kP3), 11) * kChecksumP1;
  h ^= h >> 33;
  h *= kChecksumP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

uint64_t checksum(const void* data, size_t size) {
  Checksum c;
  c.update(data, size);
  return c.digest();
}

uint64_t combine_chunk_checksums(const uint64_t* chunks, size_t n) {
  std::vector<uint8_t> bytes(n * 8);
  for (size_t i = 0; i < n; ++i)
    for (int b = 0; b < 8; ++b) bytes[i * 8 + b] = static_cast<uint8_t>(chunks[i] >> (8 * b));
  return checksum(bytes.data(), bytes.size());
}

uint64_t section_checksum(const void* data, size_t size) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  std::vector<uint64_t> chunks(checksum_chunks(size));
  for (size_t i = 0; i < chunks.size(); ++i)
    chunks[i] = checksum(p + i * kChecksumChunk, std::min(kChecksumChunk, size - i * kChecksumChunk));
  return combine_chunk_checksums(chunks.data(), chunks.size());
}

void SectionChecksum::update(const void* data, size_t size) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const size_t take = std::min(size, kChecksumChunk - current_size_);
    current_.update(p, take);
    current_size_ += take;
    p += take;
    size -= take;
    if (current_size_ == kChecksumChunk) {
      chunks_.push_back(current_.digest());
      current_ = Checksum();
      current_size_ = 0;
    }
  }
}

uint64_t SectionChecksum::digest() const {
  std::vector<uint64_t> all = chunks_;
  if (current_size_ > 0) all.push_back(current_.digest());
  return combine_chunk_checksums(all.data(), all.size());
}

}  // namespace rotor::format
