// Reading the stored m×m Hadamard matrices (../shared/data/hadamard/hadM.txt) for the quantizer,
// which writes them into the model file; the engine never reads these files itself.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rotor {

// Reads DIR/hadM.txt: lines starting with '#' and blank lines are skipped; the rest must be
// exactly m lines of exactly m characters '+' (+1) or '-' (-1) (a trailing '\r' is tolerated),
// with H·Hᵀ = m·I. Returns H row-major as int8 ±1; m == 1 returns an empty vector without reading
// anything (the engine's convention for "no dense factor"). Throws rotor::Error naming the file
// and the problem otherwise (missing file, wrong line count or length, bad character, not
// orthogonal, m < 1).
std::vector<int8_t> load_hadamard_matrix(const std::string& dir, int m);

}  // namespace rotor
