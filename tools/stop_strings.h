// Stop strings over streamed text: text that could still be the start of a stop string is
// held back, so nothing of a stop string is ever shown, and the answer ends where one begins.
#pragma once
#include <string>
#include <vector>

namespace rotor {

class StopFilter {
 public:
  explicit StopFilter(std::vector<std::string> stops);
  // Text that is safe to show after `text` arrives (possibly empty). Once a stop string is
  // complete, stopped() is true and the text before it has been returned.
  std::string push(const std::string& text);
  // Whatever is held back, at the end of the answer (nothing once stopped).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace rotor
