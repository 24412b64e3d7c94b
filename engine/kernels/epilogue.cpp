#include "engine/kernels/kernels.h"

namespace rotor {

void linear_epilogue(const PackedMatrix& w, const QuantizedActs& a, int t0, int n_tokens, int r0,
                     int r1, const int32_t* dots, float* y, size_t y_stride) {
  const int nb = w.blocks(), ng = w.groups();
  const int nseg = a.cols_padded / a.segment;
  const int blocks_per_group = w.group / w.block, blocks_per_seg = a.segment / w.block;
  const int64_t n = w.block;
  for (int t = 0; t < n_tokens; ++t) {
    const int tok = t0 + t;
    const float* sx = &a.scale[static_cast<size_t>(tok) * nseg];
    const int32_t* zx = &a.zero[static_cast<size_t>(tok) * nseg];
    const int32_t* qsum = &a.sums[static_cast<size_t>(tok) * nb];
    for (int r = r0; r < r1; ++r) {
      const int32_t* d = dots + (static_cast<size_t>(t) * (r1 - r0) + (r - r0)) * nb;
      const float* sw = w.scales + static_cast<size_t>(r) * ng;
      const int32_t* zw = w.zeros + static_cast<size_t>(r) * ng;
      const int32_t* wsum = w.sums + static_cast<size_t>(r) * nb;
      float acc = 0.0f;
      for (int b = 0; b < nb; ++b) {
        const int g = b / blocks_per_group, s = b / blocks_per_seg;
        const int64_t exact = static_cast<int64_t>(d[b]) - static_cast<int64_t>(zw[g]) * qsum[b] -
                              static_cast<int64_t>(zx[s]) * wsum[b] + n * zx[s] * zw[g];
        acc += (sw[g] * sx[s]) * static_cast<float>(exact);
      }
      y[t * y_stride + r] = acc;
    }
  }
}

}  // namespace rotor
