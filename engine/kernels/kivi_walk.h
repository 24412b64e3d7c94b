// The walk over a KIVI K cache that every ISA's version shares (kv_kernels.h): for each complete
// group and head, q' in 16-bit integers (from the group's f16 scales and minimums), its step
// and the constant; then the ISA's group scores, group_scores(kv, qs, steps, constants, n_q,
// codes, scores, stride), for the group's k_group scores of every head from that group's codes
// (kivi_slot):
//   scores[h·stride + p] = constants[h] + steps[h]·Σ_c qs[h·head_dim + c]·code_pc;
// and the positions after the last complete group in float. Each kernel file includes it and
// gets a copy vectorized for its own flags (internal linkage): the per-group pass over q' was a
// fifth of 7B-shape attention at 4096 positions in baseline SSE2.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/kernels/kv_kernels.h"
#include "engine/kernels/q16.h"
#include "engine/scratch.h"
#include "engine/vector_lanes.h"

namespace rotor {
namespace {

// scores[p] = Σ_c qn[c]·k[p·stride + c] for p < n: position by position, eight channels at a
// time on GCC vector types whose lanes are then added pairwise (at head size 8 as fast as the
// layout by channel was, eight positions at a time), the channels past a multiple of 8 one by
// one.
void float_scores(const float* qn, const float* k, size_t stride, int hd, int n, float* scores) {
  const int hd8 = hd / 8 * 8;
  for (int p = 0; p < n; ++p) {
    const float* kp = k + p * stride;
    Floats8 acc = {};
    for (int c = 0; c < hd8; c += 8) {
      Floats8 a, b;
      load_lanes(a, qn + c);
      load_lanes(b, kp + c);
      acc += a * b;
    }
    Floats4 low, high;
    load_lanes(low, reinterpret_cast<const float*>(&acc));
    load_lanes(high, reinterpret_cast<const float*>(&acc) + 4);
    low += high;
    float s = (low[0] + low[2]) + (low[1] + low[3]);
    for (int c = hd8; c < hd; ++c) s += qn[c] * kp[c];
    scores[p] = s;
  }
}

template <class GroupScores>
void kivi_walk(const KvView& kv, const float* q, int n_q, int n_pos, float* scores,
               GroupScores group_scores, void (*f16_to_f32)(const uint16_t*, size_t, float*)) {
  const int hd = kv.head_dim, G = kv.k_group;
  const size_t heads_floats = static_cast<size_t>(n_q) * hd;
  const float inv_sqrt = 1.0f / std::sqrt(static_cast<float>(hd));
  const size_t group_bytes = static_cast<size_t>(hd) * G * kv.bits / 8;
  thread_local std::vector<float> storage;
  thread_local std::vector<int16_t> q16_storage;
  // The scales and minimums of `batch` groups per conversion: at a small head size one group's
  // ranges end in a partial vector, converted value by value (stories260K's head size 8: the
  // scores of 128 positions took 15% longer).
  const int groups = n_pos / G, batch = std::max(1, 64 / hd);
  const size_t batch_floats = static_cast<size_t>(batch) * hd;
  float* qn = scratch(storage, heads_floats + hd + 2 * n_q + 2 * batch_floats);  // q / sqrt(hd)
  float* qs = qn + heads_floats;     // a head's q' = qn · scale
  float* constants = qs + hd;        // Σ qn·min, per head
  float* steps = constants + n_q;    // q' = step · qi, per head
  float* scales = steps + n_q;       // the batch's scales and minimums in float
  float* mins = scales + batch_floats;
  int16_t* qi = scratch(q16_storage, heads_floats);
  for (size_t i = 0; i < heads_floats; ++i) qn[i] = q[i] * inv_sqrt;
  for (int g = 0; g < groups; ++g) {
    const uint16_t* scale16 = kv.k_group_scale + static_cast<size_t>(g) * hd;
    const uint16_t* min16 = kv.k_group_min + static_cast<size_t>(g) * hd;
    for (int i = 0; i < hd; i += 32) {  // the next group's, one cache line at a time
      __builtin_prefetch(scale16 + hd + i);
      __builtin_prefetch(min16 + hd + i);
    }
    if (g % batch == 0) {
      const size_t n = static_cast<size_t>(std::min(batch, groups - g)) * hd;
      f16_to_f32(scale16, n, scales);
      f16_to_f32(min16, n, mins);
    }
    const float* scale = scales + static_cast<size_t>(g % batch) * hd;
    const float* min = mins + static_cast<size_t>(g % batch) * hd;
    for (int h = 0; h < n_q; ++h)
      steps[h] = quantize_q16<true>(qn + h * hd, scale, min, hd, qs, qi + h * hd, constants + h);
    group_scores(kv, qi, steps, constants, n_q, kv.k_group_codes + g * group_bytes,
                 scores + static_cast<size_t>(g) * G, n_pos);
  }
  // The positions after the last complete group.
  const int first = n_pos / G * G;
  if (first < n_pos)
    for (int h = 0; h < n_q; ++h)
      float_scores(qn + h * hd, kv.k_float, kv.k_float_stride, hd, n_pos - first,
                   scores + static_cast<size_t>(h) * n_pos + first);
}

}  // namespace
}  // namespace rotor
