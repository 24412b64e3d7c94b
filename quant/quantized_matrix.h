// A weight matrix after quantization, owned in memory until it is written to a file.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/kernels/kernels.h"

namespace rotor {

struct QuantizedMatrix {
  int rows = 0, cols = 0, cols_padded = 0, bits = 4, group = 0, block = 0;
  std::vector<uint8_t> codes;   // packed (engine/kernels/pack.h)
  std::vector<float> scales;    // [rows, groups]
  std::vector<int32_t> zeros;   // [rows, groups]
  std::vector<int32_t> sums;    // [rows, blocks]

  int groups() const { return cols_padded / group; }
  int blocks() const { return cols_padded / block; }
  // A view for the kernels (valid while this object lives).
  PackedMatrix view() const;
};

}  // namespace rotor
