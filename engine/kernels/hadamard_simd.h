// The Hadamard pass (HadamardPlan, kernels.h) written once over a small set of vector operations
// S that each SIMD file supplies (hadamard_avx2.cpp, hadamard_avx512.cpp, hadamard_neon.cpp).
// Everything here has internal linkage, so each ISA's copy keeps its own compiler flags.
//
// S: using V; W (lanes, a power of two dividing kHadamardPad); kBlocks × kCols, the register
// tile of the dense product (blocks × vectors of columns); zero, set1, load, store, add, sub,
// mul, fma(a, b, c) = a·b + c (one rounding); load_part/store_part(p, .., k), the first k < W
// lanes (loads zero the rest); fwht(v), the butterfly stages 1, 2, .., W/2 between the lanes of
// one vector (lane i with lane i ^ h); kSignBits, whether the dense product reads h as the bits
// p.h_signs (when the plan has them) rather than the floats p.h, with then signs(word), the ±1
// vector of one 16-bit word of them (W = 16).
//
// Why bits: the same ±1 vectors reach the same fused multiply-adds, so no result changes, but
// the bits (3.8 KB at m = 172) stay in L1 where the floats (121 KB) come from L2, or from beyond
// when other work (the rest of the forward pass, an SMT sibling) has used L2 in between. The
// price, one masked blend per vector of h (the word is its mask), suits AVX-512. AVX2 and NEON
// keep the floats: without mask registers a vector of signs would cost them two or three
// operations where a load costs none.
//
// Order of work per row: pre and the dense m×m product over groups of kBlocks blocks (each row
// of h is loaded once per group); or, when m == 1, pre and the first stages in registers; then
// passes of up to three stages each through memory; post, fused into the last pass. Every
// operation is the scalar reference's, in its order, and the fused multiply-adds of the dense
// product only multiply by ±1 (exact), so the result is bit-identical to the scalar reference
// (test_hadamard_kernels.cpp checks it float for float).
//
// The constant-trip loops over blocks, vectors and parts carry "unroll" pragmas: unrolled, their
// arrays of vectors live in registers (GCC -O2 alone keeps them on the stack).
#pragma once
#include <algorithm>
#include <cstddef>

#include "engine/kernels/kernels.h"

namespace rotor {
namespace {

// x[0..n) ← x ⊙ s.
template <class S>
void hadamard_scale(float* x, const float* s, size_t n) {
  size_t i = 0;
  for (; i + S::W <= n; i += S::W) S::store(x + i, S::mul(S::load(x + i), S::load(s + i)));
  if (i < n) {
    const int k = static_cast<int>(n - i);
    S::store_part(x + i, S::mul(S::load_part(x + i, k), S::load_part(s + i, k)), k);
  }
}

// Columns [v0·W, (v0 + T)·W) ∩ [0, m) of G consecutive blocks (m floats each, from x) times h,
// into out (blocks m floats apart). Reads all of x before writing out.
template <class S, int G, int T>
inline void hadamard_dense_tile(const float* x, const HadamardPlan& p, int v0, float* out) {
  typename S::V acc[G][T];
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) acc[g][t] = S::zero();
  if constexpr (S::kSignBits) static_assert(S::W == 16, "one sign word per vector");
  for (int b = 0; b < p.m; ++b) {
    // h(b, columns of vector t), made at its first use (g = 0): a single block's tile then keeps
    // one alive, not T beside T accumulators.
    typename S::V hv[T];
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) {
      const typename S::V xb = S::set1(x[g * p.m + b]);
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) {
        if (g == 0) {
          if constexpr (S::kSignBits)
            hv[t] = S::signs(p.h_signs[static_cast<size_t>(b) * (p.m_pad / 16) + v0 + t]);
          else
            hv[t] = S::load(p.h + static_cast<size_t>(b) * p.m_pad + (v0 + t) * S::W);
        }
        acc[g][t] = S::fma(xb, hv[t], acc[g][t]);
      }
    }
  }
#pragma GCC unroll 16
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      const int col = (v0 + t) * S::W, lanes = std::min(S::W, p.m - col);
      float* o = out + g * p.m + col;
      if (lanes == S::W)
        S::store(o, acc[g][t]);
      else
        S::store_part(o, acc[g][t], lanes);
    }
}

// The last `left` (≤ T) vectors of columns: a tile of exactly that width.
template <class S, int G, int T>
inline void hadamard_dense_rest(const float* x, const HadamardPlan& p, int v0, int left,
                                float* out) {
  if constexpr (T > 0) {
    if (left == T)
      hadamard_dense_tile<S, G, T>(x, p, v0, out);
    else
      hadamard_dense_rest<S, G, T - 1>(x, p, v0, left, out);
  }
}

// G consecutive blocks from x ← block · h. One tile wide: straight into x; wider (the later
// tiles still read x): through a scratch copy. A single block (decode's one row) gets the
// register tile's kBlocks × kCols accumulators as columns: with only kCols, each would wait on
// its own chain of dependent fused multiply-adds.
template <class S, int G>
void hadamard_dense_group(float* x, const HadamardPlan& p) {
  constexpr int kTile = G == 1 ? S::kBlocks * S::kCols : S::kCols;  // vectors of columns
  const int nv = (p.m + S::W - 1) / S::W;
  if (nv <= kTile) {
    hadamard_dense_rest<S, G, kTile>(x, p, 0, nv, x);
    return;
  }
  // A tile of slack: the tile sizes that m never needs still compile to in-bounds stores.
  alignas(64) float out[G * kHadamardMaxM + kTile * S::W];
  int v = 0;
  for (; v + kTile <= nv; v += kTile) hadamard_dense_tile<S, G, kTile>(x, p, v, out);
  hadamard_dense_rest<S, G, kTile - 1>(x, p, v, nv - v, out);
  std::copy(out, out + G * p.m, x);
}

// Butterfly stages between R vectors: v[i], v[i + h] ← v[i] + v[i + h], v[i] − v[i + h] for
// h = 1, 2, .., R/2 (the stages span, 2·span, .. when v[j] holds the floats at j·span).
template <class S, int R>
inline void hadamard_butterfly(typename S::V* v) {
#pragma GCC unroll 16
  for (int h = 1; h < R; h *= 2)
#pragma GCC unroll 16
    for (int j = 0; j < R / 2; ++j) {
      const int lo = j / h * 2 * h + j % h;  // the j-th index with bit h clear
      const typename S::V u = v[lo], w = v[lo + h];
      v[lo] = S::add(u, w);
      v[lo + h] = S::sub(u, w);
    }
}

// The first log2(R·W) butterfly stages (m == 1), R vectors at a time in registers, with pre
// before them and post (when not null: these are the last stages) after.
template <class S, int R>
void hadamard_in_registers(float* x, size_t n, const float* pre, const float* post) {
  for (size_t i = 0; i < n; i += R * S::W) {
    typename S::V v[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      v[r] = S::load(x + i + r * S::W);
      if (pre) v[r] = S::mul(v[r], S::load(pre + i + r * S::W));
      v[r] = S::fwht(v[r]);
    }
    hadamard_butterfly<S, R>(v);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      if (post) v[r] = S::mul(v[r], S::load(post + i + r * S::W));
      S::store(x + i + r * S::W, v[r]);
    }
  }
}

// Rows shorter than one vector (m == 1): zero lanes beyond n, which the stages h ≥ n add to
// the first n lanes exactly, so fwht on the whole vector is the transform of size n.
template <class S>
void hadamard_in_part(float* x, size_t n, const float* pre, const float* post) {
  const int k = static_cast<int>(n);
  typename S::V v = S::load_part(x, k);
  if (pre) v = S::mul(v, S::load_part(pre, k));
  v = S::fwht(v);
  if (post) v = S::mul(v, S::load_part(post, k));
  S::store_part(x, v, k);
}

// One vector (or its first k lanes when kPart) of the L butterfly stages span, 2·span, ..
// at a, a + span, .., a + (2^L − 1)·span; then ⊙ post (at a's offset) when not null.
template <class S, int L, bool kPart>
inline void hadamard_step(float* a, size_t span, const float* post, int k) {
  constexpr int kParts = 1 << L;
  auto load = [k](const float* q) { return kPart ? S::load_part(q, k) : S::load(q); };
  typename S::V v[kParts];
#pragma GCC unroll 8
  for (int j = 0; j < kParts; ++j) v[j] = load(a + j * span);
  hadamard_butterfly<S, kParts>(v);
#pragma GCC unroll 8
  for (int j = 0; j < kParts; ++j) {
    if (post) v[j] = S::mul(v[j], load(post + j * span));
    if (kPart)
      S::store_part(a + j * span, v[j], k);
    else
      S::store(a + j * span, v[j]);
  }
}

// A pass of L stages over x[0..n) from stage span, then ⊙ post if not null.
template <class S, int L>
void hadamard_pass(float* x, size_t n, size_t span, const float* post) {
  for (size_t i = 0; i < n; i += span << L) {
    size_t o = i;
    for (; o + S::W <= i + span; o += S::W)
      hadamard_step<S, L, false>(x + o, span, post ? post + o : nullptr, S::W);
    if (o < i + span)
      hadamard_step<S, L, true>(x + o, span, post ? post + o : nullptr,
                                static_cast<int>(i + span - o));
  }
}

template <class S>
void hadamard_row(const HadamardPlan& p, float* x) {
  const size_t n = p.n;
  size_t span = static_cast<size_t>(p.m);  // the butterfly stages below span are done
  const float* post = p.post;
  if (p.m > 1) {
    if (p.pre) hadamard_scale<S>(x, p.pre, n);
    const size_t blocks = size_t{1} << p.log2;
    size_t blk = 0;
    for (; blk + S::kBlocks <= blocks; blk += S::kBlocks)
      hadamard_dense_group<S, S::kBlocks>(x + blk * p.m, p);
    for (; blk < blocks; ++blk) hadamard_dense_group<S, 1>(x + blk * p.m, p);
  } else if (n < S::W) {
    hadamard_in_part<S>(x, n, p.pre, post);
    return;
  } else {
    // As many vectors in registers as n allows, up to 8 (n is a power of two).
    const size_t r = std::min<size_t>(n / S::W, 8);
    span = r * S::W;
    const float* last = span == n ? post : nullptr;
    switch (r) {
      case 1: hadamard_in_registers<S, 1>(x, n, p.pre, last); break;
      case 2: hadamard_in_registers<S, 2>(x, n, p.pre, last); break;
      case 4: hadamard_in_registers<S, 4>(x, n, p.pre, last); break;
      default: hadamard_in_registers<S, 8>(x, n, p.pre, last); break;
    }
    if (last) post = nullptr;
  }
  if (span >= n) {
    if (post) hadamard_scale<S>(x, post, n);
    return;
  }
  // Three stages per trip through memory, the rest in one last pass.
  for (; 8 * span <= n; span *= 8) hadamard_pass<S, 3>(x, n, span, 8 * span == n ? post : nullptr);
  if (4 * span == n) hadamard_pass<S, 2>(x, n, span, post);
  if (2 * span == n) hadamard_pass<S, 1>(x, n, span, post);
}

// S reading the floats of h: for plans without h_signs.
template <class S>
struct WithFloatH : S {
  static constexpr bool kSignBits = false;
};

template <class S>
void hadamard_rows(const HadamardPlan& p, float* x, int rows, size_t stride) {
  if constexpr (S::kSignBits)
    if (!p.h_signs) return hadamard_rows<WithFloatH<S>>(p, x, rows, stride);
  for (int r = 0; r < rows; ++r) hadamard_row<S>(p, x + static_cast<size_t>(r) * stride);
}

}  // namespace
}  // namespace rotor
