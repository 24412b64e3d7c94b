// The set-up of the K scores against K stored per position that every ISA's version shares
// (kv_kernels.h): each head's qn = q / sqrt(head_dim) in 16-bit integers qi with its step, and
// Σ qn; then the ISA's dots(kv, qi, steps, sums, n_q, n_pos, scores) for
//   scores[h·n_pos + t] = k_scale_t·(steps[h]·Σ_c qi[h·head_dim + c]·code_tc)
//                         + k_min_t·sums[h].
// Each kernel file includes it and gets a copy vectorized for its own flags (internal linkage).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/kernels/q16.h"
#include "engine/scratch.h"

namespace rotor {
namespace {

template <class Dots>
void token_walk(const KvView& kv, const float* q, int n_q, int n_pos, float* scores, Dots dots) {
  const int hd = kv.head_dim;
  const float inv_sqrt = 1.0f / std::sqrt(static_cast<float>(hd));
  thread_local std::vector<float> storage;
  thread_local std::vector<int16_t> q16_storage;
  float* qn = scratch(storage, 2 * static_cast<size_t>(hd) + 2 * n_q);
  float* copy = qn + hd;  // quantize_q16's q', here qn itself
  float* steps = copy + hd;
  float* sums = steps + n_q;
  int16_t* qi = scratch(q16_storage, static_cast<size_t>(n_q) * hd);
  for (int h = 0; h < n_q; ++h) {
    for (int c = 0; c < hd; ++c) qn[c] = q[h * hd + c] * inv_sqrt;
    steps[h] = quantize_q16<false>(qn, nullptr, nullptr, hd, copy, qi + h * hd, sums + h);
  }
  dots(kv, qi, steps, sums, n_q, n_pos, scores);
}

}  // namespace
}  // namespace rotor
