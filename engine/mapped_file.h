// Read-only memory mapping of a whole file: model weights are used in place, never copied.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace rotor {

// The sum of one /proc/self/smaps field (e.g. "Rss", "FilePmdMapped"), in bytes, over the
// memory areas that lie within [begin, begin + size); 0 where smaps cannot be read.
size_t mapping_bytes(const void* begin, size_t size, const char* field);

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Bytes of the mapping that are mapped in 2 MB pages now. The page cache decides it, not this
  // process: a file it holds in 2 MB folios maps so, and the decode GEMV streams such weights
  // ~15% faster on the development VM (docs/BENCHMARKS.md).
  size_t huge_page_bytes() const { return mapping_bytes(data_, size_, "FilePmdMapped"); }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace rotor
