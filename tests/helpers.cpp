#include "tests/helpers.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace rotor::test {

std::string shared_dir() {
  const char* env = std::getenv("ROTOR_SHARED");
  return env && *env ? env : "../shared";
}

std::string rotor_bin() {
  const char* env = std::getenv("ROTOR_BIN");
  if (env && *env) return env;
  // The rotor built beside this test binary (build/ or build-san/), as an absolute path, so
  // the tests find it (and the checkout above it) from any working directory.
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "build/rotor";
  const std::string path(self, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/')) + "/rotor";
}

std::string llama2c_path(const std::string& name) {
  return shared_dir() + "/models/" + name + "/" + name + ".bin";
}

namespace {
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}
}  // namespace

CliResult run_rotor(const std::vector<std::string>& args, const std::string& input) {
  TempDir tmp;
  write_file(tmp.file("in"), input);
  std::string cmd = shell_quote(rotor_bin());
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " <" + tmp.file("in") + " >" + tmp.file("out") + " 2>" + tmp.file("err");
  int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(tmp.file("out"));
  r.err = read_file(tmp.file("err"));
  return r;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/rotor-test-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::string cmd = "rm -rf '" + path_ + "'";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", path_.c_str());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::vector<float> read_f32_file(const std::string& path) {
  std::string bytes = read_file(path);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

}  // namespace rotor::test
