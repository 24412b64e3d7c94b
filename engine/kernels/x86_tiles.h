// The register tiling of block dots shared by the AVX2 and AVX-512 kernels: a kernel file
// supplies "steps" S (its vector type, how it loads a step of weights and activations, and
// their dot) and these templates walk rows × tokens × blocks in tiles around them.
//
// Everything here has internal linkage on purpose: each kernel file is compiled with its own
// ISA flags, and a shared out-of-line copy could hand AVX-512 code to an AVX2-only CPU.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/scratch.h"

namespace rotor {
namespace {  // internal linkage: see above

// The 4-bit steps multiply by the stored nibbles w' + 8 (0..15), one operation fewer per step
// than recentering them; the dots then exceed Σ q·w' by 8·Σq, which is subtracted once per
// block.
constexpr int kNibbleOffset = 8;

// Within each 128-bit lane: [a0 + a2, b0 + b2, a1 + a3, b1 + b3].
inline __m256i pair_sum32(__m256i a, __m256i b) {
  return _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
}
// Within each 128-bit lane: [a0 + a2, a1 + a3, b0 + b2, b1 + b3].
inline __m256i pair_sum64(__m256i a, __m256i b) {
  return _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
}
// The sum of the 128-bit lanes.
inline __m128i lanes_sum(__m256i v) {
  return _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}
#if defined(__AVX512F__)
inline __m512i pair_sum32(__m512i a, __m512i b) {
  return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
}
inline __m512i pair_sum64(__m512i a, __m512i b) {
  return _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
}
inline __m128i lanes_sum(__m512i v) {
  return lanes_sum(_mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)));
}
#endif

// [Σa, Σb, Σc, Σd]: a transposing reduction, cheaper than four separate ones.
template <class V>
inline __m128i totals4(V a, V b, V c, V d) {
  return lanes_sum(pair_sum64(pair_sum32(a, b), pair_sum32(c, d)));
}

struct DotJob {
  const PackedMatrix& w;
  const uint8_t* q;
  size_t q_stride;
  int r0, r1;
  int32_t* dots;
  const int32_t* offsets;  // [token, block]: the step's weight offset · Σq, for the 4-bit steps
};

// Calls f(0), …, f(N − 1) with compile-time indices, so arrays of vectors indexed by them are
// kept in registers (always inlined: a call would keep them in memory).
template <class F, int... I>
__attribute__((always_inline)) inline void unrolled(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, class F>
__attribute__((always_inline)) inline void unrolled(F&& f) {
  unrolled(f, std::make_integer_sequence<int, N>{});
}

// A long KV cache streams from memory: the attention kernels ask for the rows kPrefetchBytes
// ahead of the one they read.
constexpr int kPrefetchBytes = 2048;

inline void prefetch_ahead(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes), _MM_HINT_T0);
}

// f(h0, std::integral_constant<int, H>{}) over the heads [0, n) in chunks of H ∈ {4, 2, 1}
// heads from h0 (H at most MaxH): the attention kernels keep H heads' sums in registers at a
// time.
template <int MaxH = 4, class F>
inline void head_chunks(int n, F&& f) {
  static_assert(MaxH == 4 || MaxH == 2, "chunks of at most four or two heads");
  int h = 0;
  if constexpr (MaxH == 4)
    for (; h + 4 <= n; h += 4) f(h, std::integral_constant<int, 4>{});
  for (; h + 2 <= n; h += 2) f(h, std::integral_constant<int, 2>{});
  if (h < n) f(h, std::integral_constant<int, 1>{});
}

// How far ahead dot_tile prefetches the weights, in tiles of its rows.
constexpr int kPrefetchTiles = 2;

// Block dots of rows [r, r + R) × tokens [t, t + T) × blocks [b0, b1), K blocks at a time.
template <class S, int R, int T, int K>
void dot_tile(const DotJob& job, int r, int t, int b0, int b1) {
  static_assert(K == 1 || K == 4, "blocks go one or four at a time");
  using V = typename S::V;
  constexpr int kPairs = R * T;  // (token, row) pairs
  constexpr int kAcc = K == 4 ? 4 * kPairs : (kPairs + 3) / 4 * 4;
  const PackedMatrix& w = job.w;
  const int nb = w.blocks();
  const size_t block = w.block, row_bytes = w.row_bytes();
  const uint8_t* row[R];
  const uint8_t* act[T];
  int32_t* out[kPairs];  // [token][row]
  const int32_t* offset[T];
  unrolled<R>([&](auto i) { row[i] = w.codes + (r + i) * row_bytes; });
  unrolled<T>([&](auto k) {
    act[k] = job.q + (t + k) * job.q_stride;
    if constexpr (S::kOffset != 0) offset[k] = job.offsets + static_cast<size_t>(t + k) * nb;
    unrolled<R>([&](auto i) {
      out[k * R + i] =
          job.dots + (static_cast<size_t>(t + k) * (job.r1 - job.r0) + (r + i - job.r0)) * nb;
    });
  });
  for (int b = b0; b < b1; b += K) {
    V acc[kAcc];  // [block][token][row], then zeros up to a whole group of four
    unrolled<kAcc>([&](auto n) { acc[n] = S::zero(); });
    unrolled<K>([&](auto j) {
      for (size_t col = (b + j) * block; col < (b + j + 1) * block; col += S::kCols) {
        typename S::Q qv[T];
        unrolled<T>([&](auto k) { qv[k] = S::acts(act[k], col); });
        unrolled<R>([&](auto i) {
          // The same columns kPrefetchTiles tiles of rows ahead, so their loads from memory
          // are under way early (the hardware prefetchers alone keep too few in flight).
          // Into L2 (T1), not L1: a core has only a few dozen L1 miss buffers, and prefetches
          // that hold them capped one Zen 4 core's weight stream at 11–20 GB/s of its 26–31.
          const uint8_t* ahead = row[i] + kPrefetchTiles * R * row_bytes + col * S::kBits / 8;
          _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T1);
          const typename S::W wv = S::weights(row[i], col);
          unrolled<T>([&](auto k) {
            V& a = acc[(j * T + k) * R + i];
            a = S::dot(a, qv[k], wv);
          });
        });
      }
    });
    if constexpr (K == 4) {
      // Four consecutive blocks of one (token, row) pair reduce into one vector and one store.
      unrolled<kPairs>([&](auto n) {
        __m128i d = totals4(acc[n], acc[kPairs + n], acc[2 * kPairs + n], acc[3 * kPairs + n]);
        if constexpr (S::kOffset != 0) {
          const __m128i* o = reinterpret_cast<const __m128i*>(offset[n / R] + b);
          d = _mm_sub_epi32(d, _mm_loadu_si128(o));
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out[n] + b), d);
      });
    } else {
      // Four (token, row) pairs at a time.
      unrolled<kAcc / 4>([&](auto g) {
        alignas(16) int32_t tot[4];
        _mm_store_si128(reinterpret_cast<__m128i*>(tot),
                        totals4(acc[4 * g], acc[4 * g + 1], acc[4 * g + 2], acc[4 * g + 3]));
        unrolled<4>([&](auto m) {
          constexpr int n = 4 * g + m;
          if constexpr (n < kPairs) {
            out[n][b] = tot[m];
            if constexpr (S::kOffset != 0) out[n][b] -= offset[n / R][b];
          }
        });
      });
    }
  }
}

// Tokens [t0, t1) in tiles of T, the remainder in one smaller tile.
template <class S, int R, int T, int K>
void token_tiles(const DotJob& job, int r, int t0, int t1, int b0, int b1) {
  int t = t0;
  for (; t + T <= t1; t += T) dot_tile<S, R, T, K>(job, r, t, b0, b1);
  if constexpr (T > 1)
    if (t < t1) token_tiles<S, R, T - 1, K>(job, r, t, t1, b0, b1);
}

// Rows from r in tiles of R (a power of two), the remainder in tiles of R/2, R/4, .., 1.
template <class S, int R, int T, int K>
void row_tiles(const DotJob& job, int r, int t0, int t1, int b0, int b1) {
  static_assert((R & (R - 1)) == 0, "row tiles halve down to one row");
  for (; r + R <= job.r1; r += R) token_tiles<S, R, T, K>(job, r, t0, t1, b0, b1);
  if constexpr (R > 1)
    if (r < job.r1) row_tiles<S, R / 2, T, K>(job, r, t0, t1, b0, b1);
}

// Tokens per panel: about this many activation bytes, which stay in L2 while every tile of
// rows passes over them.
constexpr int kPanelBytes = 256 << 10;
// In decode, blocks up to this size go four at a time, so the reductions and stores at their
// ends cost less.
constexpr int kSmallBlock = 256;

// Prefill tiles are 4 rows × PrefillTokens tokens; decode tiles DecodeRows rows × (small
// blocks) 4 blocks, or StreamRows rows × 1 (large) block. All are chosen per ISA to fit its
// register file.
template <class S, int PrefillTokens, int DecodeRows, int StreamRows>
void tiled_dots(const DotJob& job, int n_tokens) {
  const PackedMatrix& w = job.w;
  const int nb = w.blocks(), nb4 = w.block <= kSmallBlock ? nb / 4 * 4 : 0;
  const int panel = std::max(4, kPanelBytes / w.cols_padded / 4 * 4);
  for (int t0 = 0; t0 < n_tokens; t0 += panel) {
    const int t1 = std::min(n_tokens, t0 + panel);
    if (t1 - t0 > 1) {
      row_tiles<S, 4, PrefillTokens, 1>(job, job.r0, t0, t1, 0, nb);
    } else {
      if (nb4 > 0) row_tiles<S, DecodeRows, 1, 4>(job, job.r0, t0, t1, 0, nb4);
      // Large blocks one at a time, StreamRows rows per tile: longer tiles keep more of the
      // weight stream in flight and read faster from memory (gemv_dram).
      if (nb4 < nb) row_tiles<S, StreamRows, 1, 1>(job, job.r0, t0, t1, nb4, nb);
    }
  }
}

// The 8 dot lanes of a 32-column step (four consecutive columns each) summed per block of
// LanesPerBlock = 1, 2 or 4 lanes, less the blocks' offsets (none: nullptr), into
// out[0, 8 / LanesPerBlock).
template <int LanesPerBlock>
inline void store_block_sums(__m256i lanes, const int32_t* offsets, int32_t* out) {
  if constexpr (LanesPerBlock == 1) {
    if (offsets)
      lanes = _mm256_sub_epi32(lanes, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(offsets)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), lanes);
    return;
  }
  const __m256i pairs = _mm256_hadd_epi32(lanes, lanes);  // p0 p1 p0 p1 | p2 p3 p2 p3
  if constexpr (LanesPerBlock == 2) {
    __m128i sums = _mm256_castsi256_si128(_mm256_permute4x64_epi64(pairs, 0x08));  // p0 p1 p2 p3
    if (offsets)
      sums = _mm_sub_epi32(sums, _mm_loadu_si128(reinterpret_cast<const __m128i*>(offsets)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), sums);
    return;
  }
  const __m256i quads = _mm256_hadd_epi32(pairs, pairs);  // four copies of each half's sum
  out[0] = _mm256_extract_epi32(quads, 0) - (offsets ? offsets[0] : 0);
  out[1] = _mm256_extract_epi32(quads, 4) - (offsets ? offsets[1] : 0);
}

// Blocks of 4·LanesPerBlock columns: a row and a token at a time, the dot lanes of each
// 32-column step summed per block in registers. The block size is a template parameter, so the
// step's first block and the reduction cost no division or branch per step.
template <class S, int LanesPerBlock>
void narrow_rows(const DotJob& job, int n_tokens) {
  constexpr int kBlocksPerStep = 8 / LanesPerBlock;
  const PackedMatrix& w = job.w;
  const int nb = w.blocks();
  const size_t row_bytes = w.row_bytes();
  for (int t = 0; t < n_tokens; ++t) {
    const uint8_t* act = job.q + t * job.q_stride;
    const int32_t* offsets = S::kOffset != 0 ? job.offsets + static_cast<size_t>(t) * nb : nullptr;
    for (int r = job.r0; r < job.r1; ++r) {
      const uint8_t* row = w.codes + r * row_bytes;
      int32_t* out = job.dots + (static_cast<size_t>(t) * (job.r1 - job.r0) + (r - job.r0)) * nb;
      for (int col = 0, b = 0; col < w.cols_padded; col += 32, b += kBlocksPerStep)
        store_block_sums<LanesPerBlock>(S::dot(S::zero(), S::acts(act, col), S::weights(row, col)),
                                        offsets ? offsets + b : nullptr, out + b);
    }
  }
}

// Blocks of 4, 8 or 16 columns (heads under 32 wide).
template <class S>
void narrow_block_dots(const DotJob& job, int n_tokens) {
  switch (job.w.block) {
    case 4: return narrow_rows<S, 1>(job, n_tokens);
    case 8: return narrow_rows<S, 2>(job, n_tokens);
    default: return narrow_rows<S, 4>(job, n_tokens);
  }
}

// 8·Σq per (token, block) for the 4-bit steps; byte_sum is the kernel file's Σ p[0, n).
template <class ByteSum>
const int32_t* nibble_offsets(const PackedMatrix& w, const uint8_t* q, size_t q_stride,
                              int n_tokens, ByteSum byte_sum) {
  const int nb = w.blocks();
  thread_local std::vector<int32_t> storage;
  int32_t* offsets = scratch(storage, static_cast<size_t>(n_tokens) * nb);
  for (int t = 0; t < n_tokens; ++t)
    for (int b = 0; b < nb; ++b)
      offsets[static_cast<size_t>(t) * nb + b] =
          kNibbleOffset * byte_sum(q + t * q_stride + b * w.block, w.block);
  return offsets;
}

}  // namespace
}  // namespace rotor
