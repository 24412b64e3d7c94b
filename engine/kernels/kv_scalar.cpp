// The scalar reference of the KIVI K scores (kv_kernels.h).
#include "engine/kernels/kivi_walk.h"

namespace rotor {

namespace {
void group_scores_scalar(const KvView& kv, const int16_t* qs, const float* steps,
                         const float* constants, int n_q, const uint8_t* codes, float* scores,
                         size_t stride) {
  const int G = kv.k_group;
  for (int h = 0; h < n_q; ++h, qs += kv.head_dim, scores += stride)
    for (int p = 0; p < G; ++p) {
      int32_t dot = 0;
      for (int c = 0; c < kv.head_dim; ++c) dot += qs[c] * kivi_code(codes, G, kv.bits, c, p);
      scores[p] = constants[h] + steps[h] * static_cast<float>(dot);
    }
}
}  // namespace

void kivi_scores_scalar(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
  kivi_walk(kv, q, n_q, n_pos, scores, group_scores_scalar);
}

}  // namespace rotor
