// MappedFile: the smaps fields of its mapping are read from the right memory areas.
#include "engine/mapped_file.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <string>

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
