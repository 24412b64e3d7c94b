// One error type for everything a user can get wrong: a bad path, a malformed model file,
// an over-long prompt, an invalid flag. The CLI prints what() on one line and exits with code().
#pragma once
#include <stdexcept>
#include <string>

namespace rotor {

enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,  // a bug or an environment failure (out of memory, I/O error mid-run)
  kExitBadInput = 2,  // the user's input was refused: path, file contents, flag, prompt
};

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, int code = kExitBadInput)
      : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

}  // namespace rotor
