// Float work on f16 matrices (psot-layer's residual blocks, kernels.h), written once over the
// vector operations S of each SIMD file: V, W (lanes), zero, set1, load, store, fma(a, b, c) =
// a·b + c (one rounding), and load_f16(p), W f16 values widened to floats (exact).
// Everything here has internal linkage, so each ISA's copy keeps its own compiler flags.
//
// Each y[j] is the scalar reference's chain of fused multiply-adds in the order of the rows, so
// every ISA gives its floats exactly (test_f16_kernels.cpp checks them float for float).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "engine/kernels/kernels.h"

namespace rotor {
namespace {

// Passes of rows [0, R) of m into y's vectors: each vector of m is widened once for all the
// tokens, and y (in L1) is loaded and stored once per R rows while the R rows of m stream from
// memory side by side. Each line of the rows kAheadPasses passes on is prefetched into L2: the
// hardware prefetchers stop at the end of every row, and a row of a block's column range is
// only a few KB. vecmat_f16_dram/avx512, half and whole rows of 2048: 11.2 and 18.6 GB/s
// without, 14.3 and 22.3 with the prefetch at four rows per pass, 15.4 and 24.8 at eight.
constexpr int kAheadPasses = 2;
template <class S, int R>
inline void vecmat_f16_pass(const float* x, size_t xs, int n_tokens, const uint16_t* m,
                            size_t ld, int vec_cols, float* y, size_t ys) {
  for (int j = 0; j < vec_cols; j += S::W) {
    if (j % 32 == 0)  // once per 64-byte line
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) __builtin_prefetch(m + (r + kAheadPasses * R) * ld + j, 0, 2);
    typename S::V mv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) mv[r] = S::load_f16(m + r * ld + j);
    for (int t = 0; t < n_tokens; ++t) {
      const float* xt = x + t * xs;
      float* yt = y + t * ys + j;
      typename S::V acc = S::load(yt);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc = S::fma(S::set1(xt[r]), mv[r], acc);
      S::store(yt, acc);
    }
  }
}

template <class S>
void vecmat_f16_simd(const float* x, size_t xs, int n_tokens, const uint16_t* m, int rows,
                     int cols, size_t ld, float* y, size_t ys) {
  constexpr int kRows = 8;
  const int vec_cols = cols / S::W * S::W;
  for (int t = 0; t < n_tokens; ++t) std::fill(y + t * ys, y + t * ys + vec_cols, 0.0f);
  int i = 0;
  for (; i + kRows <= rows; i += kRows)
    vecmat_f16_pass<S, kRows>(x + i, xs, n_tokens, m + i * ld, ld, vec_cols, y, ys);
  for (; i < rows; ++i) vecmat_f16_pass<S, 1>(x + i, xs, n_tokens, m + i * ld, ld, vec_cols, y, ys);
  // The columns past the last whole vector: the reference computes them the same way.
  if (vec_cols < cols)
    vecmat_f16_scalar(x, xs, n_tokens, m + vec_cols, rows, cols - vec_cols, ld, y + vec_cols, ys);
}

template <class S>
void f16_to_f32_simd(const uint16_t* h, size_t n, float* out) {
  size_t i = 0;
  for (; i + S::W <= n; i += S::W) S::store(out + i, S::load_f16(h + i));
  f16_to_f32_scalar(h + i, n - i, out + i);
}

}  // namespace
}  // namespace rotor
