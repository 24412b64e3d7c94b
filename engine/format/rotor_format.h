// The compact model file (docs/FORMAT.md): a fixed header, a section directory, and sections
// (manifest JSON, tokenizer bytes, tensor data), each 64-byte aligned and checksummed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace rotor::format {

constexpr char kMagic[8] = {'R', 'O', 'T', 'O', 'R', 'L', 'L', 'M'};
// Version 2 checksums sections in chunks (section_checksum below); version 1 files, with one
// checksum over each whole section, are still read.
constexpr uint32_t kVersion = 2;
constexpr uint32_t kOldestVersion = 1;
constexpr size_t kAlign = 64;

enum SectionKind : uint32_t {
  kManifest = 1,   // JSON: config, recipe, tensor table
  kTokenizer = 2,  // SentencePiece model bytes
  kTensorData = 3, // tensor payloads, offsets in the manifest are relative to its start
};
constexpr uint32_t kSectionRequired = 1;  // flags bit: a reader that does not know it must refuse

#pragma pack(push, 1)
struct FileHeader {           // 64 bytes at offset 0
  char magic[8];
  uint32_t version;
  uint32_t section_count;
  uint64_t directory_offset;
  uint64_t file_size;
  uint64_t directory_checksum;
  uint8_t reserved[16];       // zero
  uint64_t header_checksum;   // of the 56 bytes before it
};
struct SectionEntry {         // 32 bytes each, section_count of them at directory_offset
  uint32_t kind;
  uint32_t flags;
  uint64_t offset;
  uint64_t size;
  uint64_t checksum;
};
#pragma pack(pop)
static_assert(sizeof(FileHeader) == 64, "header layout");
static_assert(sizeof(SectionEntry) == 32, "directory layout");

// A fast 64-bit non-cryptographic hash (four multiply-rotate lanes over 32-byte stripes),
// enough to catch corruption and truncation; not a defence against tampering.
uint64_t checksum(const void* data, size_t size);

// Its lanes, for the kernels that advance the lanes of several byte ranges side by side
// (KernelTable::checksum_lanes): they start at kChecksumSeed, and the i-th 8-byte word w of
// each 32-byte stripe (little-endian) goes into lane i as lane ← rotl(lane + w·kChecksumP2,
// 31)·kChecksumP1.
constexpr uint64_t kChecksumP1 = 0x9E3779B185EBCA87ull;
constexpr uint64_t kChecksumP2 = 0xC2B2AE3D27D4EB4Full;
constexpr uint64_t kChecksumSeed[4] = {kChecksumP1 + kChecksumP2, kChecksumP2, 0, 0 - kChecksumP1};
// Advances lanes over the n bytes at p, n a multiple of 32 (the reference for the kernels).
void checksum_stripes(uint64_t lanes[4], const uint8_t* p, size_t n);

// The same checksum over bytes that arrive in pieces (a section streamed to disk).
class Checksum {
 public:
  Checksum();
  // Resumes a checksum whose first `total` bytes, a multiple of 32, are in lanes.
  Checksum(const uint64_t lanes[4], uint64_t total);
  void update(const void* data, size_t size);
  uint64_t digest() const;

 private:
  uint64_t lanes_[4];
  uint64_t total_ = 0;
  uint8_t tail_[32] = {};  // the bytes of an unfinished stripe
  size_t pending_ = 0;
};

// A section's checksum from version 2 on: the checksum of the little-endian checksums of its
// consecutive kChecksumChunk-byte chunks (the last one shorter; none for an empty section), so
// readers verify the chunks of a large section in parallel.
constexpr size_t kChecksumChunk = size_t{16} << 20;
uint64_t section_checksum(const void* data, size_t size);
// The chunks of a section of `size` bytes.
inline size_t checksum_chunks(size_t size) { return (size + kChecksumChunk - 1) / kChecksumChunk; }
// The section checksum from its chunks' checksums, in order.
uint64_t combine_chunk_checksums(const uint64_t* chunks, size_t n);

// section_checksum over bytes that arrive in pieces (the tensor data streamed to disk).
class SectionChecksum {
 public:
  void update(const void* data, size_t size);
  uint64_t digest() const;

 private:
  std::vector<uint64_t> chunks_;  // of the complete chunks
  Checksum current_;
  size_t current_size_ = 0;
};

inline size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace rotor::format
