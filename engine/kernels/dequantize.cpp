#include "engine/kernels/kernels.h"

namespace rotor {

void dequantize_rows(const PackedMatrix& w, int r0, int r1, float* out) {
  const int ng = w.groups();
  for (int r = r0; r < r1; ++r) {
    const uint8_t* row = w.codes + static_cast<size_t>(r) * w.row_bytes();
    float* o = out + static_cast<size_t>(r - r0) * w.cols;
    for (int j = 0; j < w.cols; ++j) {
      int code;
      if (w.bits == 8) {
        code = static_cast<int8_t>(row[j]);
      } else {
        const int i = j % kChunk;
        const uint8_t byte = row[(j / kChunk) * (kChunk / 2) + i % 32];
        code = (i < 32 ? (byte & 0x0F) : (byte >> 4)) - 8;
      }
      const int g = j / w.group;
      o[j] = w.scales[static_cast<size_t>(r) * ng + g] *
             static_cast<float>(code - w.zeros[static_cast<size_t>(r) * ng + g]);
    }
  }
}

}  // namespace rotor
