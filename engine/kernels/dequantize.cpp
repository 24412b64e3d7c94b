#include "engine/kernels/kernels.h"
#include "engine/kernels/pack.h"

namespace rotor {

void dequantize_rows(const PackedMatrix& w, int r0, int r1, float* out) {
  const int ng = w.groups();
  for (int r = r0; r < r1; ++r) {
    const uint8_t* row = w.codes + static_cast<size_t>(r) * w.row_bytes();
    float* o = out + static_cast<size_t>(r - r0) * w.cols;
    for (int j = 0; j < w.cols; ++j) {
      const int code = packed_code(row, w.bits, j);
      const int g = j / w.group;
      o[j] = w.scales[static_cast<size_t>(r) * ng + g] *
             static_cast<float>(code - w.zeros[static_cast<size_t>(r) * ng + g]);
    }
  }
}

}  // namespace rotor
