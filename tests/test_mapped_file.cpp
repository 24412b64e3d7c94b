// MappedFile: the smaps fields of its mapping are read from the right memory areas; a file read
// into memory (FileAccess::kRead) holds the same bytes, in an area of its own.
#include "engine/mapped_file.h"

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string>

#include "engine/error.h"
#include "tests/helpers.h"

using namespace rotor;
using namespace rotor::test;

TEST_CASE("mapped file: smaps fields count its own pages, in bytes") {
  TempDir dir;
  const std::string path = dir.path() + "/file.bin";
  // Not a whole number of pages, so the mapping's area ends past the file's last byte.
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t size = 37 * page + 123;
  write_file(path, std::string(size, '\x5a'));
  MappedFile f(path);
  volatile uint32_t sum = 0;
  for (size_t i = 0; i < size; i += page) sum = sum + f.data()[i];  // every page resident
  CHECK(sum == 38u * 0x5a);
  CHECK(mapping_bytes(f.data(), f.size(), "Size") == 38 * page);
  CHECK(mapping_bytes(f.data(), f.size(), "Rss") == 38 * page);
  CHECK(f.huge_page_bytes() <= f.size());
  // An area only partly within the range counts nothing; nor does a field that does not exist.
  CHECK(mapping_bytes(f.data(), page, "Rss") == 0);
  CHECK(mapping_bytes(f.data(), f.size(), "NoSuchField") == 0);
}

TEST_CASE("mapped file: read into memory, the bytes are the file's, in an area of their own") {
  TempDir dir;
  const std::string path = dir.path() + "/file.bin";
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t size = 37 * page + 123;
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i * 131 + (i >> 9));
  write_file(path, bytes);
  MappedFile mapped(path), read(path, FileAccess::kRead);
  CHECK(mapped.access() == FileAccess::kMap);
  CHECK(read.access() == FileAccess::kRead);
  REQUIRE(read.size() == size);
  CHECK(std::equal(read.data(), read.data() + size, mapped.data()));
  // Its own area, every page of it resident (the read wrote them all).
  CHECK(mapping_bytes(read.data(), read.size(), "Size") == 38 * page);
  CHECK(mapping_bytes(read.data(), read.size(), "Rss") == 38 * page);
  CHECK(read.huge_page_bytes() <= read.size());

  // Past the 64 MB a reading thread takes at once: three chunks, each in its place.
  const std::string large_path = dir.path() + "/large.bin";
  std::string large((size_t{128} << 20) + 4097, '\0');
  for (size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i ^ (i >> 20));
  write_file(large_path, large);
  MappedFile large_read(large_path, FileAccess::kRead);
  REQUIRE(large_read.size() == large.size());
  const auto* want = reinterpret_cast<const uint8_t*>(large.data());
  CHECK(std::equal(want, want + large.size(), large_read.data()));

  // A (sparse) file larger than all of memory is refused before any of it is read; mapped, it
  // is fine.
  const std::string huge_path = dir.path() + "/huge.bin";
  const long pages = sysconf(_SC_PHYS_PAGES);
  REQUIRE(pages > 0);
  {
    std::ofstream huge(huge_path, std::ios::binary);
    huge.seekp(static_cast<std::streamoff>(pages) * static_cast<std::streamoff>(page) + 4096);
    huge.put('\x01');
  }
  CHECK_THROWS_WITH_AS(MappedFile(huge_path, FileAccess::kRead),
                       doctest::Contains("MiB are available (mapped, it needs no copy)"), Error);
  CHECK(MappedFile(huge_path).size() > static_cast<size_t>(pages) * page);

  CHECK_THROWS_WITH_AS(MappedFile(dir.path() + "/missing.bin", FileAccess::kRead),
                       doctest::Contains("missing.bin: cannot open"), Error);
  CHECK_THROWS_WITH_AS(MappedFile(dir.path(), FileAccess::kRead),
                       doctest::Contains("not a regular file"), Error);
}

namespace {
// This process's address space in bytes (VmSize), or 0 if /proc does not say.
size_t address_space() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmSize:", 0) == 0) return std::stoull(line.substr(7)) << 10;
  return 0;
}
}  // namespace

TEST_CASE("mapped file: a read whose memory cannot be had is a one-line error, not bad_alloc") {
  TempDir dir;
  const std::string path = dir.path() + "/sparse.bin";
  {
    std::ofstream f(path, std::ios::binary);
    f.seekp((std::streamoff{512} << 20) - 1);
    f.put('\x01');
  }
  const size_t used = address_space();
  REQUIRE(used > 0);
  rlimit old{};
  REQUIRE(getrlimit(RLIMIT_AS, &old) == 0);
  // 128 MB more address space than now, as `ulimit -v` would leave: the file's 512 MB do not fit.
  rlimit tight = old;
  tight.rlim_cur = used + (size_t{128} << 20);
  REQUIRE(setrlimit(RLIMIT_AS, &tight) == 0);
  std::string error;
  try {
    MappedFile f(path, FileAccess::kRead);
  } catch (const Error& e) {
    error = e.what();
  }
  REQUIRE(setrlimit(RLIMIT_AS, &old) == 0);
  CHECK(error == path + ": cannot read into memory: no 512 MiB to hold it");
  CHECK(MappedFile(path, FileAccess::kRead).size() == size_t{512} << 20);  // with room, it reads
}
