#include "engine/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>

#include "engine/error.h"
#include "engine/threads.h"

namespace rotor {

namespace {

// An open file descriptor, closed however the constructor leaves.
struct OpenFile {
  int fd;
  ~OpenFile() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads the whole of fd into out, in chunks the engine's threads take side by side (most of a
// fresh copy's cost is faulting its pages in, which threads do in parallel). Returns why it
// failed, or "".
std::string read_all(int fd, uint8_t* out, size_t size) {
  constexpr size_t kChunk = size_t{64} << 20;  // one task's bytes
  constexpr int kShorter = -1;                 // the file got shorter while it was read
  const int n_chunks = static_cast<int>((size + kChunk - 1) / kChunk);
  std::atomic<int> error{0};  // 0: none yet; else the first failure's errno, or kShorter
  thread_pool().parallel_for(n_chunks, [&](int c, int) {
    const size_t end = std::min(size, (static_cast<size_t>(c) + 1) * kChunk);
    for (size_t done = static_cast<size_t>(c) * kChunk; done < end && error.load() == 0;) {
      const ssize_t n = ::pread(fd, out + done, end - done, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int none = 0;
        error.compare_exchange_strong(none, n == 0 ? kShorter : errno);
        return;
      }
      done += static_cast<size_t>(n);
    }
  });
  const int e = error.load();
  return e == 0 ? "" : e == kShorter ? "the file got shorter while it was read" : std::strerror(e);
}

// The memory the kernel estimates is available for new allocations (MemAvailable: free memory
// and what it can reclaim, the page cache included), in bytes; 0 where unknown.
size_t available_memory() {
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    unsigned long long kb = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kb) == 1)
      return static_cast<size_t>(kb) << 10;
  }
  return 0;
}

}  // namespace

MappedFile::MappedFile(const std::string& path, FileAccess access)
    : path_(path), access_(access) {
  const OpenFile file{::open(path.c_str(), O_RDONLY)};
  const int fd = file.fd;
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) throw Error(path + ": file is empty");
  if (access == FileAccess::kRead) {
    // A copy larger than the memory there is would end in the OOM killer, not an error.
    const size_t available = available_memory();
    if (available > 0 && size_ > available)
      throw Error(path + ": cannot read into memory: the file is " +
                  std::to_string(size_ >> 20) + " MiB and " + std::to_string(available >> 20) +
                  " MiB are available (mapped, it needs no copy)");
    try {
      copy_ = ZeroedArray<uint8_t>(size_, Pages::kHuge);
    } catch (const std::bad_alloc&) {
      throw Error(path + ": cannot read into memory: no " + std::to_string(size_ >> 20) +
                  " MiB to hold it");
    }
    const std::string failure = read_all(fd, copy_.data(), size_);
    if (!failure.empty()) throw Error(path + ": cannot read: " + failure);
    // Read-only from here, as a mapping is: a stray write faults instead of changing weights.
    // The area's flags then differ from other arrays', so the kernel never merges it with a
    // neighbour, and smaps reports its pages alone (huge_page_bytes).
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    ::mprotect(copy_.data(), (size_ + page - 1) / page * page, PROT_READ);
    data_ = copy_.data();
    return;
  }
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) throw Error(path + ": cannot map: " + std::strerror(errno));
  // Hints, so ignored where unsupported. Every byte is read at once (the checksums): ask for
  // the whole file now, in 2 MB page-cache folios, which later loads map 512 pages per fault
  // (a 7B file's warm load here: 0.21-0.29 s -> 0.07-0.08 s). The load that reads the file from
  // disk costs more where the hypervisor takes free 2 MB blocks back (free page reporting, as
  // on the development VM: 1.2 -> 3.2 s), once per file until the page cache drops it.
#ifdef MADV_HUGEPAGE  // Linux
  ::madvise(p, size_, MADV_HUGEPAGE);
#endif
#ifdef POSIX_FADV_WILLNEED
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
#endif
  data_ = static_cast<const uint8_t*>(p);
}

size_t mapping_bytes(const void* begin, size_t size, const char* field) {
  std::ifstream smaps("/proc/self/smaps");
  // Areas end on page boundaries: a mapping of a file ends past its last byte.
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = reinterpret_cast<uintptr_t>(begin);
  const uintptr_t last = (first + size + page - 1) / page * page;
  const std::string prefix = std::string(field) + ":";
  size_t bytes = 0;
  bool inside = false;  // the current area lies within the range
  for (std::string line; std::getline(smaps, line);) {
    unsigned long lo = 0, hi = 0;
    char dash = 0;
    if (std::sscanf(line.c_str(), "%lx%c%lx", &lo, &dash, &hi) == 3 && dash == '-') {
      inside = lo >= first && hi <= last;
      continue;
    }
    unsigned long kb = 0;
    if (inside && line.compare(0, prefix.size(), prefix) == 0 &&
        std::sscanf(line.c_str() + prefix.size(), "%lu kB", &kb) == 1)
      bytes += static_cast<size_t>(kb) << 10;
  }
  return bytes;
}

MappedFile::~MappedFile() {
  if (access_ == FileAccess::kMap && data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace rotor
