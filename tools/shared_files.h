// Files of the shared/ data set that sits beside the checkout (default calibration text, the
// LLaMA-2 tokenizer), looked up in $ROTOR_SHARED, beside the repository holding this binary,
// then in ../shared.
#pragma once
#include <string>

namespace rotor {

// The path of shared/REL (rel starts with '/'), or "" when none of the places has it.
std::string find_shared_file(const std::string& rel);

}  // namespace rotor
