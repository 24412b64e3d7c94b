// The scalar reference of the Hadamard pass (HadamardPlan in kernels.h): the definition in plain
// loops, in a fixed order (pre, dense m×m product per block, radix-2 butterflies by increasing
// stage, post) that the SIMD versions follow up to the rounding of their fused multiply-adds.
#include "engine/kernels/kernels.h"

namespace rotor {

void hadamard_scalar(const HadamardPlan& p, float* x, int rows, size_t stride) {
  const size_t m = static_cast<size_t>(p.m), blocks = size_t{1} << p.log2;
  for (int r = 0; r < rows; ++r) {
    float* row = x + static_cast<size_t>(r) * stride;
    if (p.pre)
      for (size_t i = 0; i < p.n; ++i) row[i] *= p.pre[i];
    if (m > 1)
      for (size_t blk = 0; blk < blocks; ++blk) {
        float* xb = row + blk * m;
        float out[kHadamardMaxM];
        for (size_t d = 0; d < m; ++d) {
          float acc = 0.0f;
          for (size_t b = 0; b < m; ++b) acc += xb[b] * p.h[b * p.m_pad + d];
          out[d] = acc;
        }
        for (size_t d = 0; d < m; ++d) xb[d] = out[d];
      }
    for (size_t span = m; span < p.n; span *= 2)
      for (size_t i = 0; i < p.n; i += 2 * span)
        for (size_t t = i; t < i + span; ++t) {
          const float u = row[t], v = row[t + span];
          row[t] = u + v;
          row[t + span] = u - v;
        }
    if (p.post)
      for (size_t i = 0; i < p.n; ++i) row[i] *= p.post[i];
  }
}

}  // namespace rotor
