// The KIVI K scores of one complete group (kv_kernels.h) written once over the vector operations
// S of an x86 file (kv_avx2.cpp: 8 lanes, kv_avx512.cpp: 16): a tile of positions keeps its
// scores in registers while q' is broadcast channel by channel, for up to four query heads at
// once that share each conversion; the work is a few conversions and fused multiply-adds per
// byte of codes. Internal linkage: each ISA's copy keeps its flags.
//
// S: using V; W (lanes); set1, store, fma(a, b, c) = a·b + c; widen(p): W code bytes from p as
// W int32 lanes (__m256i / __m512i); to_float, low_nibbles, high_nibbles on those lanes.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "engine/kernels/kv_kernels.h"
#include "engine/kernels/x86_tiles.h"

namespace rotor {
namespace {

// One step is W bytes of a channel's codes: W positions at 8 bits; at 4 bits W positions from
// the low nibbles and the W positions half a group later from the high nibbles. The group's
// channel_bytes = G·Bits/8 must be a multiple of W. H heads share each step's conversions.
template <class S, int Bits, int H>
void kivi_group_scores(const float* qs, const float* constants, const uint8_t* codes, int hd,
                       int G, float* scores, size_t stride) {
  constexpr int kVecs = Bits == 8 ? 1 : 2;                    // vectors per step
  constexpr int kSteps = std::max(1, 8 / (kVecs * H));        // steps per tile: 8 sums in all
  const int channel_bytes = G * Bits / 8, half = G / 2;
  for (int b0 = 0; b0 < channel_bytes; b0 += S::W * kSteps) {
    const int steps = std::min(kSteps, (channel_bytes - b0) / S::W);
    typename S::V acc[H][kSteps * kVecs];
    unrolled<H>([&](auto h) {
      unrolled<kSteps * kVecs>([&](auto j) { acc[h][j] = S::set1(constants[h]); });
    });
    for (int c = 0; c < hd; ++c) {
      typename S::V w[H];
      unrolled<H>([&](auto h) { w[h] = S::set1(qs[h * hd + c]); });
      const uint8_t* b = codes + static_cast<size_t>(c) * channel_bytes + b0;
      // The next group's codes, hd · channel_bytes further: a long cache streams from memory.
      __builtin_prefetch(b + static_cast<size_t>(hd) * channel_bytes);
      unrolled<kSteps>([&](auto s) {
        if (s >= steps) return;
        const auto bytes = S::widen(b + S::W * s);
        if constexpr (Bits == 8) {
          const typename S::V f = S::to_float(bytes);
          unrolled<H>([&](auto h) { acc[h][s] = S::fma(w[h], f, acc[h][s]); });
        } else {
          const typename S::V lo = S::to_float(S::low_nibbles(bytes));
          const typename S::V hi = S::to_float(S::high_nibbles(bytes));
          unrolled<H>([&](auto h) {
            acc[h][2 * s] = S::fma(w[h], lo, acc[h][2 * s]);
            acc[h][2 * s + 1] = S::fma(w[h], hi, acc[h][2 * s + 1]);
          });
        }
      });
    }
    unrolled<H>([&](auto h) {
      float* out = scores + h * stride;
      unrolled<kSteps>([&](auto s) {
        if (s >= steps) return;
        const int p = b0 + S::W * s;  // the step's first position (low nibbles at 4 bits)
        if constexpr (Bits == 8) {
          S::store(out + p, acc[h][s]);
        } else {
          S::store(out + p, acc[h][2 * s]);
          S::store(out + half + p, acc[h][2 * s + 1]);
        }
      });
    });
  }
}

template <class S>
void kivi_group_scores_of(const KvView& kv, const float* qs, const float* constants, int n_q,
                          const uint8_t* codes, float* scores, size_t stride) {
  const int hd = kv.head_dim;
  head_chunks(n_q, [&](int h0, auto heads) {
    constexpr int H = decltype(heads)::value;
    const float* q = qs + static_cast<size_t>(h0) * hd;
    float* out = scores + h0 * stride;
    if (kv.bits == 8)
      kivi_group_scores<S, 8, H>(q, constants + h0, codes, hd, kv.k_group, out, stride);
    else
      kivi_group_scores<S, 4, H>(q, constants + h0, codes, hd, kv.k_group, out, stride);
  });
}

}  // namespace
}  // namespace rotor
