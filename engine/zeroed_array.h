// A fixed-size array of zeros that costs nothing until it is used. std::vector<T>(n) writes
// every byte when it is made; calloc takes large blocks as fresh pages from the kernel, which
// are zero already and are only materialized when first touched. A session sizes its KV cache
// and activations for the model's whole context (at LLaMA-2-7B shape about 0.7 GB): zeroing
// them up front took ~0.6 s before a short prompt's first token; now a prompt pays for the
// positions it uses.
//
// With Pages::kHuge the array is mapped on its own, from a 2 MB boundary, and the kernel asked
// (a hint) to back it with 2 MB pages as it is touched: a long KV cache is walked every token,
// and on 4 KB pages the walk took 9–36% longer here (TLB misses, costly under a hypervisor's
// nested paging; docs/BENCHMARKS.md). An array under 2 MB, which no 2 MB page can back, is
// mapped as it is: one system call, not four.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <utility>

namespace rotor {

enum class Pages { kDefault, kHuge };

template <class T>
class ZeroedArray {
  static_assert(std::is_trivial_v<T>, "zero bytes must be a valid T");

 public:
  ZeroedArray() = default;
  explicit ZeroedArray(size_t n, Pages pages = Pages::kDefault)
      : size_(n), mapped_(pages == Pages::kHuge) {
    if (n == 0) return;
    if (!mapped_) {
      data_ = static_cast<T*>(std::calloc(n, sizeof(T)));
      if (!data_) throw std::bad_alloc();
      return;
    }
    // Mapped 2 MB over and trimmed to start on a 2 MB boundary: the kernel only backs whole
    // aligned 2 MB ranges with 2 MB pages.
    constexpr size_t kHugePage = size_t{2} << 20;
    const size_t bytes = n * sizeof(T);
    const size_t over = bytes < kHugePage ? 0 : kHugePage;  // room to trim to a 2 MB boundary
    void* p = ::mmap(nullptr, bytes + over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    if (over == 0) {
      data_ = static_cast<T*>(p);
      return;
    }
    char* const base = static_cast<char*>(p);
    char* const start =
        base + (kHugePage - reinterpret_cast<uintptr_t>(base) % kHugePage) % kHugePage;
    if (start > base) ::munmap(base, start - base);
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));  // munmap takes whole pages
    const size_t kept = (bytes + page - 1) / page * page;
    ::munmap(start + kept, (base + bytes + kHugePage) - (start + kept));
#ifdef MADV_HUGEPAGE  // Linux
    ::madvise(start, bytes, MADV_HUGEPAGE);
#endif
    data_ = reinterpret_cast<T*>(start);
  }
  ZeroedArray(ZeroedArray&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        mapped_(o.mapped_) {}
  ZeroedArray& operator=(ZeroedArray&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(mapped_, o.mapped_);
    return *this;
  }
  ZeroedArray(const ZeroedArray&) = delete;
  ZeroedArray& operator=(const ZeroedArray&) = delete;
  ~ZeroedArray() {
    if (mapped_ && data_)
      ::munmap(data_, size_ * sizeof(T));
    else
      std::free(data_);
  }

  size_t size() const { return size_; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;  // by mmap (Pages::kHuge), else by calloc
};

}  // namespace rotor
