// The KIVI K scores of one complete group (kv_kernels.h) written once over the vector operations
// S of an x86 file (kv_avx2.cpp: 8 lanes, kv_avx512.cpp: 16): a tile of positions keeps its
// scores in registers while q' is broadcast channel by channel; the work is a few conversions
// and fused multiply-adds per byte of codes. Internal linkage: each ISA's copy keeps its flags.
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
// channel_bytes = G·Bits/8 must be a multiple of W.
template <class S, int Bits>
void kivi_group_scores(const float* qs, float constant, const uint8_t* codes, int hd, int G,
                       float* scores) {
  constexpr int kVecs = Bits == 8 ? 1 : 2;  // vectors per step
  constexpr int kSteps = 8 / kVecs;         // steps per tile: 8 accumulators
  const int channel_bytes = G * Bits / 8, half = G / 2;
  for (int b0 = 0; b0 < channel_bytes; b0 += S::W * kSteps) {
    const int steps = std::min(kSteps, (channel_bytes - b0) / S::W);
    typename S::V acc[kSteps * kVecs];
    unrolled<kSteps * kVecs>([&](auto j) { acc[j] = S::set1(constant); });
    for (int c = 0; c < hd; ++c) {
      const typename S::V w = S::set1(qs[c]);
      const uint8_t* b = codes + static_cast<size_t>(c) * channel_bytes + b0;
      // The next group's codes, hd · channel_bytes further: a long cache streams from memory.
      __builtin_prefetch(b + static_cast<size_t>(hd) * channel_bytes);
      unrolled<kSteps>([&](auto s) {
        if (s >= steps) return;
        const auto bytes = S::widen(b + S::W * s);
        if constexpr (Bits == 8) {
          acc[s] = S::fma(w, S::to_float(bytes), acc[s]);
        } else {
          acc[2 * s] = S::fma(w, S::to_float(S::low_nibbles(bytes)), acc[2 * s]);
          acc[2 * s + 1] = S::fma(w, S::to_float(S::high_nibbles(bytes)), acc[2 * s + 1]);
        }
      });
    }
    unrolled<kSteps>([&](auto s) {
      if (s >= steps) return;
      const int p = b0 + S::W * s;  // the step's first position (low nibbles at 4 bits)
      if constexpr (Bits == 8) {
        S::store(scores + p, acc[s]);
      } else {
        S::store(scores + p, acc[2 * s]);
        S::store(scores + half + p, acc[2 * s + 1]);
      }
    });
  }
}

template <class S>
void kivi_group_scores_of(const KvView& kv, const float* qs, float constant, const uint8_t* codes,
                          float* scores) {
  if (kv.bits == 8)
    kivi_group_scores<S, 8>(qs, constant, codes, kv.head_dim, kv.k_group, scores);
  else
    kivi_group_scores<S, 4>(qs, constant, codes, kv.head_dim, kv.k_group, scores);
}

}  // namespace
}  // namespace rotor
