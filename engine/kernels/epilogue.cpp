#include <vector>

#include "engine/kernels/kernels.h"

namespace rotor {

namespace {

// Σ (q − z_x)·(w' − z_w) over one block of n columns, exactly.
inline int64_t exact_dot(int32_t dot, int32_t zw, int32_t qsum, int32_t zx, int32_t wsum,
                         int64_t n) {
  return static_cast<int64_t>(dot) - static_cast<int64_t>(zw) * qsum -
         static_cast<int64_t>(zx) * wsum + n * zx * zw;
}

// The rows of one token when each has one block (per-channel weights, whole-row activations):
// the loop below without its inner loop and index arithmetic, about 3.5 times as fast.
void one_block_rows(const int32_t* d, const float* sw, const int32_t* zw, const int32_t* wsum,
                    float sx, int32_t zx, int32_t qsum, int64_t n, int rows, float* y) {
  for (int r = 0; r < rows; ++r)
    y[r] = 0.0f + (sw[r] * sx) * static_cast<float>(exact_dot(d[r], zw[r], qsum, zx, wsum[r], n));
}

}  // namespace

void linear_epilogue(const PackedMatrix& w, const QuantizedActs& a, int t0, int n_tokens, int r0,
                     int r1, const int32_t* dots, float* y, size_t y_stride) {
  const int nb = w.blocks(), ng = w.groups();
  const int nseg = a.cols_padded / a.segment;
  const int64_t n = w.block;
  // Each block's weight group and activation segment, looked up rather than divided out in
  // the inner loop (two integer divisions per block cost more than the rest of its work).
  thread_local std::vector<int> group_of, segment_of;
  group_of.resize(nb);
  segment_of.resize(nb);
  for (int b = 0; b < nb; ++b) {
    group_of[b] = b / (w.group / w.block);
    segment_of[b] = b / (a.segment / w.block);
  }
  for (int t = 0; t < n_tokens; ++t) {
    const int tok = t0 + t;
    const float* sx = &a.scale[static_cast<size_t>(tok) * nseg];
    const int32_t* zx = &a.zero[static_cast<size_t>(tok) * nseg];
    const int32_t* qsum = &a.sums[static_cast<size_t>(tok) * nb];
    if (nb == 1) {
      one_block_rows(dots + static_cast<size_t>(t) * (r1 - r0), w.scales + r0, w.zeros + r0,
                     w.sums + r0, sx[0], zx[0], qsum[0], n, r1 - r0, y + t * y_stride + r0);
      continue;
    }
    for (int r = r0; r < r1; ++r) {
      const int32_t* d = dots + (static_cast<size_t>(t) * (r1 - r0) + (r - r0)) * nb;
      const float* sw = w.scales + static_cast<size_t>(r) * ng;
      const int32_t* zw = w.zeros + static_cast<size_t>(r) * ng;
      const int32_t* wsum = w.sums + static_cast<size_t>(r) * nb;
      float acc = 0.0f;
      for (int b = 0; b < nb; ++b) {
        const int g = group_of[b], s = segment_of[b];
        acc += (sw[g] * sx[s]) * static_cast<float>(exact_dot(d[b], zw[g], qsum[b], zx[s],
                                                              wsum[b], n));
      }
      y[t * y_stride + r] = acc;
    }
  }
}

}  // namespace rotor
