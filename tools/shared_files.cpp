#include "tools/shared_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace rotor {

std::string find_shared_file(const std::string& rel) {
  std::vector<std::string> roots;
  if (const char* env = std::getenv("ROTOR_SHARED")) roots.push_back(env);
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string dir(exe, static_cast<size_t>(n));
    dir = dir.substr(0, dir.find_last_of('/'));      // build/
    dir = dir.substr(0, dir.find_last_of('/'));      // the checkout
    roots.push_back(dir + "/../shared");
  }
  roots.push_back("../shared");
  for (const std::string& root : roots) {
    struct stat st;
    if (::stat((root + rel).c_str(), &st) == 0) return root + rel;
  }
  return "";
}

}  // namespace rotor
