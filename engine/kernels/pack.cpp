#include "engine/kernels/pack.h"

#include "engine/kernels/kernels.h"

namespace rotor {

void pack_weight_codes(const int8_t* codes, int rows, int cols_padded, int bits, uint8_t* out) {
  const size_t row_bytes = packed_row_bytes(cols_padded, bits);
  for (int r = 0; r < rows; ++r) {
    const int8_t* c = codes + static_cast<size_t>(r) * cols_padded;
    uint8_t* o = out + r * row_bytes;
    if (bits == 8) {
      for (int j = 0; j < cols_padded; ++j) o[j] = static_cast<uint8_t>(c[j]);
      continue;
    }
    for (int chunk = 0; chunk < cols_padded / kChunk; ++chunk)
      for (int i = 0; i < kChunk / 2; ++i) {
        const int lo = c[chunk * kChunk + i] + 8, hi = c[chunk * kChunk + i + kChunk / 2] + 8;
        o[chunk * (kChunk / 2) + i] = static_cast<uint8_t>(lo | (hi << 4));
      }
  }
}

void weight_block_sums(const int8_t* codes, int rows, int cols_padded, int block, int32_t* sums) {
  const int nb = cols_padded / block;
  for (int r = 0; r < rows; ++r)
    for (int b = 0; b < nb; ++b) {
      int32_t s = 0;
      for (int j = b * block; j < (b + 1) * block; ++j) s += codes[static_cast<size_t>(r) * cols_padded + j];
      sums[static_cast<size_t>(r) * nb + b] = s;
    }
}

}  // namespace rotor
