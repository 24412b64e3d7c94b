// A whole file's bytes in memory, read-only: model weights are used where they lie, never
// unpacked or converted. By default the file is mapped in place; it can instead be read into
// memory of the process's own (llama.cpp's --no-mmap).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/zeroed_array.h"

namespace rotor {

enum class FileAccess {
  kMap,   // mmap: nothing copied, shared with the page cache and other processes, instant start
  kRead,  // read into this process's memory in 2 MB pages: a start that copies the file and
          // memory of its own, but pages that do not depend on how the page cache holds the
          // file. On the development VM 7B decode ran 0-39% faster so than from the page
          // cache's 2 MB pages in `make speed` runs (the hypervisor backs those differently;
          // docs/BENCHMARKS.md).
};

// The sum of one /proc/self/smaps field (e.g. "Rss", "FilePmdMapped"), in bytes, over the
// memory areas that lie within [begin, begin + size); 0 where smaps cannot be read.
size_t mapping_bytes(const void* begin, size_t size, const char* field);

class MappedFile {
 public:
  // Throws Error naming the path.
  explicit MappedFile(const std::string& path, FileAccess access = FileAccess::kMap);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  FileAccess access() const { return access_; }
  // Bytes of the file that are in 2 MB pages now. For a mapped file the page cache decides it,
  // not this process: a file it holds in 2 MB folios maps so, and the decode GEMV streams such
  // weights ~15% faster on the development VM than 4 KB pages (docs/BENCHMARKS.md).
  size_t huge_page_bytes() const {
    return mapping_bytes(data_, size_,
                         access_ == FileAccess::kMap ? "FilePmdMapped" : "AnonHugePages");
  }

 private:
  std::string path_;
  FileAccess access_;
  ZeroedArray<uint8_t> copy_;  // FileAccess::kRead: the file's bytes
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace rotor
