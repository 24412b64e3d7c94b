// The scalar references of the K scores (kv_kernels.h).
#include "engine/import/dtype.h"
#include "engine/kernels/kivi_walk.h"
#include "engine/kernels/token_walk.h"

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

void token_dots_scalar(const KvView& kv, const int16_t* qi, const float* steps,
                       const float* sums, int n_q, int n_pos, float* scores) {
  const int hd = kv.head_dim;
  for (int h = 0; h < n_q; ++h, qi += hd, scores += n_pos)
    for (int t = 0; t < n_pos; ++t) {
      const uint8_t* k = kv.k_codes + static_cast<size_t>(t) * kv.head_bytes();
      int32_t dot = 0;
      for (int c = 0; c < hd; ++c) dot += qi[c] * row_code(k, kv.bits, c);
      scores[t] = f16_to_f32(kv.k_scale[t]) * (steps[h] * static_cast<float>(dot)) +
                  f16_to_f32(kv.k_min[t]) * sums[h];
    }
}
}  // namespace

void token_scores_scalar(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
  token_walk(kv, q, n_q, n_pos, scores, token_dots_scalar);
}

void kivi_scores_scalar(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
  kivi_walk(kv, q, n_q, n_pos, scores, group_scores_scalar, f16_to_f32_scalar);
}

}  // namespace rotor
