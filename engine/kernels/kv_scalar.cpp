// The scalar reference of the KIVI K scores (kv_kernels.h) and the walk all ISAs share.
#include <cmath>
#include <vector>

#include "engine/kernels/kv_kernels.h"

namespace rotor {

void kivi_scores(const KvView& kv, const float* q, int n_pos, float* scores,
                 KiviGroupScores group_scores) {
  const int hd = kv.head_dim, G = kv.k_group;
  const float inv_sqrt = 1.0f / std::sqrt(static_cast<float>(hd));
  const size_t group_bytes = static_cast<size_t>(hd) * G * kv.bits / 8;
  thread_local std::vector<float> qs;
  qs.resize(hd);
  for (int g = 0; g < n_pos / G; ++g) {
    const float* scale = kv.k_group_scale + static_cast<size_t>(g) * hd;
    const float* min = kv.k_group_min + static_cast<size_t>(g) * hd;
    for (int i = 0; i < hd; i += 16) {  // the next group's, one cache line at a time
      __builtin_prefetch(scale + hd + i);
      __builtin_prefetch(min + hd + i);
    }
    // Eight partial sums: one chain of dependent adds would cost as much as the group's dots.
    float partial[8] = {};
    for (int i = 0; i < hd; ++i) {
      qs[i] = q[i] * scale[i] * inv_sqrt;
      partial[i % 8] += q[i] * min[i];
    }
    float constant = 0.0f;
    for (float p : partial) constant += p;
    group_scores(kv, qs.data(), constant * inv_sqrt, kv.k_group_codes + g * group_bytes,
                 scores + static_cast<size_t>(g) * G);
  }
  const int first = n_pos / G * G;
  for (int t = first; t < n_pos; ++t) {
    const float* k = kv.k_float + (t - first) * kv.k_float_stride;
    float dot = 0.0f;
    for (int i = 0; i < hd; ++i) dot += q[i] * k[i];
    scores[t] = dot * inv_sqrt;
  }
}

namespace {
void group_scores_scalar(const KvView& kv, const float* qs, float constant, const uint8_t* codes,
                         float* scores) {
  const int G = kv.k_group, half = G / 2;
  const size_t channel_bytes = static_cast<size_t>(G) * kv.bits / 8;
  for (int p = 0; p < G; ++p) scores[p] = constant;
  for (int c = 0; c < kv.head_dim; ++c, codes += channel_bytes)
    for (int p = 0; p < G; ++p) {
      const int code = kv.bits == 8 ? codes[p] : p < half ? codes[p] & 0x0F : codes[p - half] >> 4;
      scores[p] += qs[c] * static_cast<float>(code);
    }
}
}  // namespace

void kivi_scores_scalar(const KvView& kv, const float* q, int n_pos, float* scores) {
  kivi_scores(kv, q, n_pos, scores, group_scores_scalar);
}

}  // namespace rotor
