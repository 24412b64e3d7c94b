// A progress bar on stderr for long work; silent when stderr is not a terminal.
#pragma once
#include <chrono>
#include <string>

namespace rotor {

class ProgressBar {
 public:
  ProgressBar(std::string label, int total);
  void update(int done);
  // Clears the bar line.
  void finish();

 private:
  std::string label_;
  int total_;
  bool active_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace rotor
