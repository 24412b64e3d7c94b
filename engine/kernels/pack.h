// Writes weight codes in the layout the kernels read (see PackedMatrix::codes).
#pragma once
#include <cstddef>
#include <cstdint>

namespace rotor {

// Bytes of one packed row.
inline size_t packed_row_bytes(int cols_padded, int bits) {
  return static_cast<size_t>(cols_padded) * bits / 8;
}
// codes: [rows, cols_padded] signed codes (4-bit: −8..7, 8-bit: −128..127).
void pack_weight_codes(const int8_t* codes, int rows, int cols_padded, int bits, uint8_t* out);
// sums[r, b] = Σ codes over block b of row r.
void weight_block_sums(const int8_t* codes, int rows, int cols_padded, int block, int32_t* sums);

}  // namespace rotor
