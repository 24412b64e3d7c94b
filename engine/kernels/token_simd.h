// The K scores against K stored per position (kv_kernels.h) written once over the vector
// operations S of an x86 file (kv_avx2.cpp: 8 int32 lanes, kv_avx512.cpp: 16). A vector holds
// 4W bytes of a position's codes as 2W int16 words; the codes of one word's nibbles (bytes at 8
// bits) are its planes, each shifted and masked into int16 lanes that an integer pair dot
// (pmaddwd, vpdpwssd) multiplies by qi rearranged to match once per call. A position's sum then
// sits spread over the W int32 lanes: the sums of W positions fold together pairwise into one
// vector (a transpose as it adds), whose lane j is position j's dot, so no position pays for a
// horizontal sum of its own; rows of 4 bytes go W to a vector, one per lane. Up to kMaxHeads
// query heads share each plane.
// Internal linkage: each ISA's copy keeps its flags.
//
// S, beyond kivi_simd.h's operations: row(p, n), the 4W bytes at p, those from n on (n < 4W)
// read as 0 and not touched; shift_right<N> of the int16 lanes; low_bytes of them;
// fold<L>(a, b) for L = 1, 2, ... log2 W: two vectors each holding the sums of 2^(L−1)
// positions spread over the lanes into one holding those of 2^L (a's first), their lane sums
// kept; dot_scores(p, dots, scale, min, step, sum): p[j] = scale[j]·(step·dots_j) + min[j]·sum
// for j < W, scale and min in f16.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/kernels/token_walk.h"
#include "engine/kernels/x86_tiles.h"
#include "engine/scratch.h"

namespace rotor {
namespace {

template <class S, int Bits, int H>
struct TokenDots {
  using I = typename S::I;
  static constexpr int kPlanes = 16 / Bits;   // codes per int16 word
  static constexpr int kWords = 2 * S::W;     // int16 words per vector
  const uint8_t* codes;
  int n_bytes, vecs, n_pos;
  const int16_t* qv;  // [head][vector][plane][word]
  size_t head_words;  // vecs · kPlanes · kWords

  static I plane(I x, int p) {
    if constexpr (Bits == 8) {
      return p == 0 ? S::low_bytes(x) : S::template shift_right<8>(x);
    } else {
      switch (p) {
        case 0: return S::low_nibbles(x);
        case 1: return S::low_nibbles(S::template shift_right<4>(x));
        case 2: return S::low_nibbles(S::template shift_right<8>(x));
        default: return S::template shift_right<12>(x);
      }
    }
  }

  // The pair dots of the vector of codes x (vector v of a row) into acc, per head: two sums
  // per head, even and odd planes, to halve the chain of dependent pair dots.
  __attribute__((always_inline)) void add_planes(I x, int v, I (&acc)[H][2]) const {
    unrolled<kPlanes>([&](auto p) __attribute__((always_inline)) {
      const I codes_p = plane(x, p);
      unrolled<H>([&](auto h) __attribute__((always_inline)) {
        const int16_t* q = qv + h * head_words + (v * kPlanes + p) * kWords;
        acc[h][p % 2] = S::dot(acc[h][p % 2], codes_p, S::words(q));
      });
    });
  }

  // Position t's dots spread over the lanes, per head (0 past n_pos).
  void position(int t, I (&out)[H]) const {
    if (t >= n_pos) {
      unrolled<H>([&](auto h) { out[h] = S::zero(); });
      return;
    }
    const uint8_t* row = codes + static_cast<size_t>(t) * n_bytes;
    for (int b = 0; b < n_bytes; b += 64) prefetch_ahead(row + b);
    I acc[H][2];
    unrolled<H>([&](auto h) { acc[h][0] = acc[h][1] = S::zero(); });
    for (int v = 0; v < vecs; ++v)
      add_planes(S::row(row + 4 * S::W * v, n_bytes - 4 * S::W * v), v, acc);
    unrolled<H>([&](auto h) { out[h] = S::add(acc[h][0], acc[h][1]); });
  }

  // Positions [t0, t0 + W) of rows of 4 bytes (head size 8 at 4 bits, 4 at 8): one vector
  // holds them all, a position per int32 lane, so each lane's pair dots make its whole dot
  // (qv then holds one row's words, repeated in every lane).
  void packed(int t0, I (&out)[H]) const {
    const uint8_t* rows = codes + 4 * static_cast<size_t>(t0);
    prefetch_ahead(rows);
    I acc[H][2];
    unrolled<H>([&](auto h) { acc[h][0] = acc[h][1] = S::zero(); });
    add_planes(S::row(rows, 4 * std::min(S::W, n_pos - t0)), 0, acc);
    unrolled<H>([&](auto h) { out[h] = S::add(acc[h][0], acc[h][1]); });
  }

  // Positions [t, t + N) folded: lane j of out[h] holds position t + j's dot once N = W.
  template <int N, int Level = __builtin_ctz(N)>
  void positions(int t, I (&out)[H]) const {
    if constexpr (N == 1) {
      position(t, out);
    } else {
      I first[H], second[H];
      positions<N / 2>(t, first);
      positions<N / 2>(t + N / 2, second);
      unrolled<H>([&](auto h) { out[h] = S::template fold<Level>(first[h], second[h]); });
    }
  }
};

// H heads' scores, W positions at a time; the last partial tile goes through buffers on the
// stack, so nothing past n_pos is read or written.
template <class S, int Bits, int H>
void token_tiles(const TokenDots<S, Bits, H>& d, const KvView& kv, const float* steps,
                 const float* sums, float* scores, size_t stride) {
  using I = typename S::I;
  for (int t0 = 0; t0 < d.n_pos; t0 += S::W) {
    I dots[H];
    if (d.n_bytes == 4)
      d.packed(t0, dots);
    else
      d.template positions<S::W>(t0, dots);
    const int n = std::min(S::W, d.n_pos - t0);
    unrolled<H>([&](auto h) {
      float* out = scores + h * stride + t0;
      if (n == S::W) {
        S::dot_scores(out, dots[h], kv.k_scale + t0, kv.k_min + t0, steps[h], sums[h]);
      } else {
        uint16_t scale[S::W] = {}, min[S::W] = {};
        float part[S::W];
        std::copy_n(kv.k_scale + t0, n, scale);
        std::copy_n(kv.k_min + t0, n, min);
        S::dot_scores(part, dots[h], scale, min, steps[h], sums[h]);
        std::copy_n(part, n, out);
      }
    });
  }
}

template <class S, int Bits>
void token_dots_of(const KvView& kv, const int16_t* qi, const float* steps, const float* sums,
                   int n_q, int n_pos, float* scores) {
  using D = TokenDots<S, Bits, 1>;
  const int hd = kv.head_dim, n_bytes = kv.head_bytes();
  const int vecs = (n_bytes + 4 * S::W - 1) / (4 * S::W);
  const size_t head_words = static_cast<size_t>(vecs) * D::kPlanes * D::kWords;
  // qi rearranged: word j of plane p in vector v multiplies element (v·2W + j)·kPlanes + p,
  // or in rows of 4 bytes (a position per int32 lane), element (j mod 2)·kPlanes + p.
  thread_local std::vector<int16_t> storage;
  int16_t* qv = scratch(storage, n_q * head_words);
  for (int h = 0; h < n_q; ++h)
    for (int v = 0; v < vecs; ++v)
      for (int p = 0; p < D::kPlanes; ++p)
        for (int j = 0; j < D::kWords; ++j) {
          const int word = n_bytes == 4 ? j % 2 : v * D::kWords + j;
          const int c = word * D::kPlanes + p;
          qv[h * head_words + (v * D::kPlanes + p) * D::kWords + j] =
              c < hd ? qi[h * hd + c] : int16_t{0};
        }
  head_chunks<S::kMaxHeads>(n_q, [&](int h0, auto heads) {
    constexpr int H = decltype(heads)::value;
    const TokenDots<S, Bits, H> d{kv.k_codes, n_bytes, vecs, n_pos, qv + h0 * head_words,
                                  head_words};
    token_tiles(d, kv, steps + h0, sums + h0, scores + static_cast<size_t>(h0) * n_pos, n_pos);
  });
}

template <class S>
void token_dots_simd(const KvView& kv, const int16_t* qi, const float* steps, const float* sums,
                     int n_q, int n_pos, float* scores) {
  if (kv.bits == 8)
    token_dots_of<S, 8>(kv, qi, steps, sums, n_q, n_pos, scores);
  else
    token_dots_of<S, 4>(kv, qi, steps, sums, n_q, n_pos, scores);
}

}  // namespace
}  // namespace rotor
