// The KIVI K scores of one complete group (kv_kernels.h) written once over the vector operations
// S of an x86 file (kv_avx2.cpp: 8 positions per vector, kv_avx512.cpp: 16): each position is
// an int32 lane, and a channel block's two bytes per position widen to the int16 pair that an
// integer pair dot (pmaddwd, vpdpwssd) multiplies by q' of those two channels. Tiles of
// positions keep their sums in registers, for up to four query heads that share each widening.
// Internal linkage: each ISA's copy keeps its flags.
//
// S: using I (int32 lanes); W (lanes); kMaxHeads, the most heads whose sums and q' pairs fit
// in its registers at once; zero, pairs(p): the 2W bytes at p as W lanes of two
// zero-extended int16; low_nibbles and shift_right<4> of such lanes (the 4-bit codes of the
// pair); pair(a, b), every lane the int16 pair (a, b); dot(acc, x, y): acc + the lanes' pair
// dots; add; scores(p, dots, step, constant): p[0, W) = constant + step·dots.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "engine/kernels/kivi_walk.h"
#include "engine/kernels/x86_tiles.h"

namespace rotor {
namespace {

// T tiles of W positions at a time, two sums per tile and head (even and odd channel
// blocks): 8 independent chains of pair dots for one head, whose latency one chain per tile
// would expose.
template <class S, int Bits, int H>
void kivi_group_scores(const int16_t* qs, const float* steps, const float* constants,
                       const uint8_t* codes, int hd, int G, float* scores, size_t stride) {
  using I = typename S::I;
  constexpr int kT = std::max(1, 4 / H);
  constexpr int kChannels = Bits == 8 ? 2 : 4;  // per block
  const int blocks = hd / kChannels, tiles = G / S::W;
  const size_t block_bytes = 2 * static_cast<size_t>(G);
  // q' of head h's channels c and c + 1 as the int16 pair in every lane.
  auto pair = [&](int h, int c) { return S::pair(qs[h * hd + c], qs[h * hd + c + 1]); };
  for (int t0 = 0; t0 < tiles; t0 += kT) {
    const int n_tiles = std::min(kT, tiles - t0);
    I acc[H][kT][2];
    unrolled<H>([&](auto h) __attribute__((always_inline)) {
      unrolled<kT>([&](auto t) __attribute__((always_inline)) {
        acc[h][t][0] = acc[h][t][1] = S::zero();
      });
    });
    auto add_block = [&](int b, auto parity) __attribute__((always_inline)) {
      const uint8_t* p = codes + b * block_bytes + 2 * S::W * t0;
      // The next group's codes, hd · G · Bits / 8 further: a long cache streams from memory.
      for (int at = 0; at < 2 * S::W * n_tiles; at += 64)
        __builtin_prefetch(p + block_bytes * blocks + at);
      I q_lo[H], q_hi[H];
      unrolled<H>([&](auto h) __attribute__((always_inline)) {
        q_lo[h] = pair(h, b * kChannels);
        if constexpr (Bits == 4) q_hi[h] = pair(h, b * kChannels + 2);
      });
      unrolled<kT>([&](auto t) __attribute__((always_inline)) {
        if (t >= n_tiles) return;
        const I x = S::pairs(p + 2 * S::W * t);
        if constexpr (Bits == 8) {
          unrolled<H>([&](auto h) __attribute__((always_inline)) {
            acc[h][t][parity] = S::dot(acc[h][t][parity], x, q_lo[h]);
          });
        } else {
          const I lo = S::low_nibbles(x), hi = S::template shift_right<4>(x);
          unrolled<H>([&](auto h) __attribute__((always_inline)) {
            acc[h][t][parity] = S::dot(acc[h][t][parity], lo, q_lo[h]);
            acc[h][t][parity] = S::dot(acc[h][t][parity], hi, q_hi[h]);
          });
        }
      });
    };
    int b = 0;
    for (; b + 2 <= blocks; b += 2) {
      add_block(b, std::integral_constant<int, 0>{});
      add_block(b + 1, std::integral_constant<int, 1>{});
    }
    if (b < blocks) add_block(b, std::integral_constant<int, 0>{});
    unrolled<H>([&](auto h) __attribute__((always_inline)) {
      unrolled<kT>([&](auto t) __attribute__((always_inline)) {
        if (t >= n_tiles) return;
        S::scores(scores + h * stride + (t0 + t) * S::W, S::add(acc[h][t][0], acc[h][t][1]),
                  steps[h], constants[h]);
      });
    });
  }
}

template <class S>
void kivi_group_scores_of(const KvView& kv, const int16_t* qs, const float* steps,
                          const float* constants, int n_q, const uint8_t* codes, float* scores,
                          size_t stride) {
  const int hd = kv.head_dim;
  head_chunks<S::kMaxHeads>(n_q, [&](int h0, auto heads) {
    constexpr int H = decltype(heads)::value;
    const int16_t* q = qs + static_cast<size_t>(h0) * hd;
    float* out = scores + h0 * stride;
    if (kv.bits == 8)
      kivi_group_scores<S, 8, H>(q, steps + h0, constants + h0, codes, hd, kv.k_group, out, stride);
    else
      kivi_group_scores<S, 4, H>(q, steps + h0, constants + h0, codes, hd, kv.k_group, out, stride);
  });
}

}  // namespace
}  // namespace rotor
