// Shared by the tests: where ../shared and the rotor binary are, running the CLI as a user
// would, and scratch files.
#pragma once
#include <string>
#include <vector>

namespace rotor::test {

// ../shared (override with ROTOR_SHARED).
std::string shared_dir();
// The rotor binary under test: the one beside the test binary (override with ROTOR_BIN).
std::string rotor_bin();
// Path of a model's llama2.c checkpoint in ../shared/models.
std::string llama2c_path(const std::string& name);

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs `rotor ARGS...` with stdin from `input`, capturing stdout and stderr.
CliResult run_rotor(const std::vector<std::string>& args, const std::string& input = "");

// A fresh directory removed (with its contents) at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);
std::vector<float> read_f32_file(const std::string& path);

}  // namespace rotor::test
