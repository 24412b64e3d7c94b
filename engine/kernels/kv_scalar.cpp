// The scalar reference of the KIVI K scores (kv_kernels.h) and the walk all ISAs share.
#include <cmath>
#include <vector>

#include "engine/kernels/kv_kernels.h"
#include "engine/scratch.h"

namespace rotor {

namespace {
// qs = qn ⊙ scale; returns Σ qn·min. The channels go in runs of 8 with fixed trip counts and
// restrict-qualified pointers, which the compiler turns into vector operations of the baseline
// ISA (eight partial sums: one chain of dependent adds would cost more than the dots). -O2
// leaves a loop of unknown trip count scalar: qs one float at a time was 14% of 7B-shape
// attention at 4096 positions.
float scaled_and_dot(const float* __restrict qn, const float* __restrict scale,
                     const float* __restrict min, int hd, float* __restrict qs) {
  const int hd8 = hd / 8 * 8;
  float partial[8] = {};
  for (int i = 0; i < hd8; i += 8)
    for (int j = 0; j < 8; ++j) partial[j] += qn[i + j] * min[i + j];
  for (int i = hd8; i < hd; ++i) partial[i % 8] += qn[i] * min[i];
  for (int i = 0; i < hd8; i += 8)
    for (int j = 0; j < 8; ++j) qs[i + j] = qn[i + j] * scale[i + j];
  for (int i = hd8; i < hd; ++i) qs[i] = qn[i] * scale[i];
  return ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
         ((partial[4] + partial[5]) + (partial[6] + partial[7]));
}

// scores[p] = Σ_c qn[c]·k[c·stride + p] for p < n: eight positions at a time, channel by
// channel, in fixed-trip loops the compiler vectorizes (a dot per position cost 2.5 ns at head
// size 8). The last eight may run past n: every channel has k_group readable slots (KvView).
void float_scores(const float* __restrict qn, const float* __restrict k, size_t stride, int hd,
                  int n, float* __restrict scores) {
  for (int p0 = 0; p0 < n; p0 += 8) {
    float acc[8] = {};
    for (int c = 0; c < hd; ++c) {
      const float w = qn[c];
      const float* __restrict kc = k + c * stride + p0;
      for (int j = 0; j < 8; ++j) acc[j] += w * kc[j];
    }
    for (int j = 0; j < 8 && p0 + j < n; ++j) scores[p0 + j] = acc[j];
  }
}
}  // namespace

void kivi_scores(const KvView& kv, const float* q, int n_q, int n_pos, float* scores,
                 KiviGroupScores group_scores) {
  const int hd = kv.head_dim, G = kv.k_group;
  const size_t heads_floats = static_cast<size_t>(n_q) * hd;
  const float inv_sqrt = 1.0f / std::sqrt(static_cast<float>(hd));
  const size_t group_bytes = static_cast<size_t>(hd) * G * kv.bits / 8;
  thread_local std::vector<float> storage;
  float* qn = scratch(storage, 2 * heads_floats + n_q);  // q / sqrt(hd)
  float* qs = qn + heads_floats;                          // a group's q' = qn · scale
  float* constants = qs + heads_floats;                   // and its Σ qn·min, per head
  for (size_t i = 0; i < heads_floats; ++i) qn[i] = q[i] * inv_sqrt;
  for (int g = 0; g < n_pos / G; ++g) {
    const float* scale = kv.k_group_scale + static_cast<size_t>(g) * hd;
    const float* min = kv.k_group_min + static_cast<size_t>(g) * hd;
    for (int i = 0; i < hd; i += 16) {  // the next group's, one cache line at a time
      __builtin_prefetch(scale + hd + i);
      __builtin_prefetch(min + hd + i);
    }
    for (int h = 0; h < n_q; ++h)
      constants[h] = scaled_and_dot(qn + h * hd, scale, min, hd, qs + h * hd);
    group_scores(kv, qs, constants, n_q, kv.k_group_codes + g * group_bytes,
                 scores + static_cast<size_t>(g) * G, n_pos);
  }
  // The positions after the last complete group.
  const int first = n_pos / G * G;
  if (first < n_pos)
    for (int h = 0; h < n_q; ++h)
      float_scores(qn + h * hd, kv.k_float, kv.k_float_stride, hd, n_pos - first,
                   scores + static_cast<size_t>(h) * n_pos + first);
}

namespace {
void group_scores_scalar(const KvView& kv, const float* qs, const float* constants, int n_q,
                         const uint8_t* codes, float* scores, size_t stride) {
  const int G = kv.k_group, half = G / 2;
  const size_t channel_bytes = static_cast<size_t>(G) * kv.bits / 8;
  for (int h = 0; h < n_q; ++h, qs += kv.head_dim, scores += stride) {
    for (int p = 0; p < G; ++p) scores[p] = constants[h];
    const uint8_t* cc = codes;
    for (int c = 0; c < kv.head_dim; ++c, cc += channel_bytes)
      for (int p = 0; p < G; ++p) {
        const int code = kv.bits == 8 ? cc[p] : p < half ? cc[p] & 0x0F : cc[p - half] >> 4;
        scores[p] += qs[c] * static_cast<float>(code);
      }
  }
}
}  // namespace

void kivi_scores_scalar(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
  kivi_scores(kv, q, n_q, n_pos, scores, group_scores_scalar);
}

}  // namespace rotor
