// ZeroedArray: zeros everywhere, moves without copying, and takes no memory until used.
#include "engine/zeroed_array.h"

#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

using namespace rotor;

namespace {

// How many pages of [p, p + n) are resident (mincore): independent of what the rest of the
// process allocates or frees meanwhile.
size_t resident_pages(const void* p, size_t n) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) / page * page;
  const size_t pages = (reinterpret_cast<uintptr_t>(p) + n - begin + page - 1) / page;
  std::vector<unsigned char> in_core(pages);
  REQUIRE(mincore(reinterpret_cast<void*>(begin), pages * page, in_core.data()) == 0);
  size_t resident = 0;
  for (unsigned char c : in_core) resident += c & 1;
  return resident;
}

}  // namespace

TEST_CASE("zeroed array: every element reads zero, writes stick, moves keep the storage") {
  for (Pages pages : {Pages::kDefault, Pages::kHuge}) {
    CAPTURE(static_cast<int>(pages));
    ZeroedArray<float> a(1000, pages);
    REQUIRE(a.size() == 1000);
    for (float v : a) CHECK(v == 0.0f);
    a[3] = 2.5f;
    float* storage = a.data();
    ZeroedArray<float> b(std::move(a));
    CHECK(b.data() == storage);
    CHECK(b[3] == 2.5f);
    CHECK(a.size() == 0);
    CHECK(a.data() == nullptr);
    ZeroedArray<float> c;
    c = std::move(b);
    CHECK(c.size() == 1000);
    CHECK(c[3] == 2.5f);
    CHECK(ZeroedArray<int>(0, pages).data() == nullptr);
  }
}

TEST_CASE("zeroed array: a large array takes memory only where it is written") {
  const size_t bytes = size_t{256} << 20, page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  // The measure sees memory written up front, as std::vector<uint8_t>(n) writes it.
  std::vector<uint8_t> written(bytes);
  CHECK(resident_pages(written.data(), bytes) >= bytes / page);

  // Pages::kHuge asks for 2 MB pages: still nothing until touched, then whole 2 MB pages.
  for (Pages pages : {Pages::kDefault, Pages::kHuge}) {
    CAPTURE(static_cast<int>(pages));
    ZeroedArray<uint8_t> big(bytes, pages);
    CHECK(resident_pages(big.data(), bytes) <= 2);  // at most the allocator's header page
    const size_t touched = size_t{8} << 20;
    for (size_t i = 0; i < touched; i += page) big[i] = 1;
    // Huge pages may bring in up to 2 MB around each end of the touched range.
    const size_t resident = resident_pages(big.data(), bytes);
    CHECK(resident >= touched / page);
    CHECK(resident <= (touched + (size_t{4} << 20)) / page);
    CHECK(big[bytes - 1] == 0);
  }
}
