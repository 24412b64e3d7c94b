// Writes weight codes in the layout the kernels read (see PackedMatrix::codes).
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/kernels/kernels.h"

namespace rotor {

// The signed code w' of column j in a packed row (the layout of PackedMatrix::codes).
inline int packed_code(const uint8_t* row, int bits, int j) {
  if (bits == 8) return static_cast<int8_t>(row[j]);
  const int i = j % kChunk;  // position within its chunk
  const uint8_t byte = row[(j / kChunk) * (kChunk / 2) + i % (kChunk / 2)];
  return (i < kChunk / 2 ? (byte & 0x0F) : (byte >> 4)) - 8;
}

// Bytes of one packed row.
inline size_t packed_row_bytes(int cols_padded, int bits) {
  return static_cast<size_t>(cols_padded) * bits / 8;
}
// codes: [rows, cols_padded] signed codes (4-bit: −8..7, 8-bit: −128..127).
void pack_weight_codes(const int8_t* codes, int rows, int cols_padded, int bits, uint8_t* out);
// sums[r, b] = Σ codes over block b of row r.
void weight_block_sums(const int8_t* codes, int rows, int cols_padded, int block, int32_t* sums);

}  // namespace rotor
