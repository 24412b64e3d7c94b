// The rotation flags shared by `rotor quantize` and `rotor synth`: --rotation's value, checked,
// and --hadamard-dir, which defaults to the shared/ data set's stored Hadamard factors.
#pragma once
#include <string>

#include "tools/args.h"

namespace rotor {

void add_hadamard_dir_option(Args& args);
// --rotation (or `fallback`), one of none, hadamard, psot, psot-layer (else an Error).
std::string rotation_from_args(const Args& args, const std::string& fallback);
// The directory of hadM.txt files for a rotation; an Error when there is none.
std::string hadamard_dir_from_args(const Args& args);

}  // namespace rotor
