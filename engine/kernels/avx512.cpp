// AVX-512 VNNI kernels (with VL and BW).
//
// Block dots: vpdpbusd multiplies the unsigned activation codes by the signed weight codes and
// sums groups of four into int32 lanes, exactly, so the results equal the scalar reference.
// Work goes in register tiles: in prefill 4 rows × up to 4 tokens, so each weight step is
// loaded and unpacked once for all the tile's tokens and each activation step once for all its
// rows; in decode 8 rows of 256-bit steps where each row has one block (kAvx512Kernels; one
// row after another in kAvx512RowByRowKernels, see dots_by_block), else 8 rows × 4
// consecutive blocks for 4-bit weights (pair_row_block_dots; in kAvx512RowByRowKernels one row
// after another again, row_by_row_block_dots) and for 8-bit ones 16 rows (one
// large block at a time) or 4 rows × (with small blocks) 4 consecutive blocks. At the end of a
// block the tile's accumulators are reduced four at a time. Where the CPU has AMX-INT8, prefill
// of 16 or more tokens goes through its tile unit instead (see "AMX tiles" below).
//
// Activation quantization repeats the scalar reference's float operations lane by lane, so
// codes, scales and zero points are bit-identical. Attention is attend_simd.h over 16 lanes.

#include "engine/kernels/avx512_intrinsics.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/format/rotor_format.h"
#include "engine/kernels/attend_simd.h"
#include "engine/kernels/f16_simd.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/kv_kernels.h"
#include "engine/kernels/x86_tiles.h"
#include "engine/scratch.h"

namespace rotor {

namespace {

// How decode walks rows of one block (dots_by_block): in tiles of 8 rows side by side, or one
// row after another.
enum class DecodeWalk { kTiles, kRowByRow };

// The first n of 64 byte lanes (none for n ≤ 0, all for n ≥ 64).
inline __mmask64 first64(int n) {
  return n <= 0 ? 0 : n >= 64 ? ~0ull : (1ull << n) - 1;
}

// Σ p[0, n).
inline int32_t byte_sum(const uint8_t* p, int n) {
  __m512i acc = _mm512_setzero_si512();
  for (int j = 0; j < n; j += 64)
    acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(first64(n - j), p + j),
                                                _mm512_setzero_si512()));
  return static_cast<int32_t>(_mm512_reduce_add_epi64(acc));
}

// ---------------------------------------------------------------------------- block dots


// Nibbles of one packed 64-column chunk in column order: the low nibbles (columns 0..31) fill
// the lower 256 bits, the high nibbles (columns 32..63) the upper (shifted down by a masked
// vpsrlw, one uop, where a variable vpsrlvw takes several).
inline __m512i unpack_chunk(const uint8_t* chunk) {
  const __m512i both =
      _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(chunk)));
  return _mm512_and_si512(_mm512_mask_srli_epi16(both, 0xFFFF0000u, both, 4),
                          _mm512_set1_epi8(0x0F));
}

// Nibbles of columns [col, col + 32), col a multiple of 32: one half of a chunk.
inline __m256i unpack_half(const uint8_t* row, size_t col) {
  const __m256i bytes =
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + col / kChunk * (kChunk / 2)));
  const __m128i shift = _mm_cvtsi32_si128(col % kChunk == 0 ? 0 : 4);
  return _mm256_and_si256(_mm256_srl_epi16(bytes, shift), _mm256_set1_epi8(0x0F));
}

// A step along a row. Blocks that are multiples of 64 columns go a whole chunk (a zmm) at a
// time; odd multiples of 32 go half a chunk (a ymm) at a time, so no step straddles two blocks.
template <int Bits>
struct ZmmStep {
  using V = __m512i;
  using W = V;
  using Q = V;
  static constexpr int kCols = 64;
  static constexpr int kBits = Bits;
  static constexpr int kOffset = Bits == 4 ? kNibbleOffset : 0;  // in the stored codes
  static V zero() { return _mm512_setzero_si512(); }
  static Q acts(const uint8_t* q, size_t col) { return _mm512_loadu_si512(q + col); }
  static W weights(const uint8_t* row, size_t col) {
    if constexpr (Bits == 8)
      return _mm512_loadu_si512(row + col);
    else
      return unpack_chunk(row + col / 2);
  }
  static V dot(V acc, Q q, W w) { return _mm512_dpbusd_epi32(acc, q, w); }
};

template <int Bits>
struct YmmStep {
  using V = __m256i;
  using W = V;
  using Q = V;
  static constexpr int kCols = 32;
  static constexpr int kBits = Bits;
  static constexpr int kOffset = Bits == 4 ? kNibbleOffset : 0;
  static V zero() { return _mm256_setzero_si256(); }
  static Q acts(const uint8_t* q, size_t col) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + col));
  }
  static W weights(const uint8_t* row, size_t col) {
    if constexpr (Bits == 8)
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + col));
    else
      return unpack_half(row, col);
  }
  static V dot(V acc, Q q, W w) { return _mm256_dpbusd_epi32(acc, q, w); }
};

// Decode of rows with one block each (per-channel weights, the classifier) one row after
// another, so that a share of rows streams from memory as one sequence: on an Intel Xeon one
// core read 13–14 GB/s through the 16 streams of 16-row tiles, 17–18 as one stream
// (docs/BENCHMARKS.md). Four accumulators keep four dot chains in flight.
constexpr int kRowWalkPrefetchBytes = 32 << 10;

// Asks for the cache line kRowWalkPrefetchBytes past `at` and returns qv, this step's
// activations: where the compiler put two _mm_prefetch back to back, the stream read 13–14
// GB/s, not 17–18. The asm, tied to qv, stays in the step that uses it. One per cache line.
inline __m512i prefetch_ahead_of(const uint8_t* at, __m512i qv) {
  asm volatile("prefetcht1 %1" : "+v"(qv) : "m"(at[kRowWalkPrefetchBytes]));
  return qv;
}

// Σ over one row's columns [0, cols) of q × the row's codes, in the lanes of a zmm.
template <class S>
inline __m512i row_dot(const uint8_t* row, const uint8_t* q, int cols) {
  constexpr int kUnroll = 4;
  constexpr size_t kStepBytes = S::kCols * S::kBits / 8;
  __m512i acc[kUnroll];
  unrolled<kUnroll>([&](auto u) { acc[u] = _mm512_setzero_si512(); });
  const uint8_t* const end = row + static_cast<size_t>(cols) * S::kBits / 8;
  for (; row + kUnroll * kStepBytes <= end; row += kUnroll * kStepBytes, q += kUnroll * S::kCols) {
    unrolled<kUnroll>([&](auto u) {
      __m512i qv = S::acts(q, u * S::kCols);
      if constexpr (u * kStepBytes % 64 == 0) qv = prefetch_ahead_of(row + u * kStepBytes, qv);
      acc[u] = S::dot(acc[u], qv, S::weights(row, u * S::kCols));
    });
  }
  for (; row < end; row += kStepBytes, q += S::kCols)
    acc[0] = S::dot(acc[0], S::acts(q, 0), S::weights(row, 0));
  return _mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(acc[2], acc[3]));
}

// Rows [job.r0, job.r1) with one block each, one token, in 512-bit steps.
template <int Bits>
void row_by_row_dots(const DotJob& job) {
  const PackedMatrix& w = job.w;
  const size_t row_bytes = w.row_bytes();
  const int32_t offset = Bits == 4 ? job.offsets[0] : 0;
  for (int r = job.r0; r < job.r1; ++r)
    job.dots[r - job.r0] = _mm512_reduce_add_epi32(row_dot<ZmmStep<Bits>>(
                               w.codes + static_cast<size_t>(r) * row_bytes, job.q, w.block)) -
                           offset;
}

// The steps for the block size. Decode of rows with one block each (per-channel weights, the
// classifier; a row's block is a whole number of 64-column chunks) goes, with
// DecodeWalk::kTiles, in 8-row tiles of 256-bit steps: on Zen 4 those stream from memory much
// faster than 512-bit ones (gemv_dram/avx512 on one core 24–34 GB/s against 21–24 for the zmm
// steps in 8- or 16-row tiles), although from cache they are slower (24–38 against 42–52).
// On an Intel Xeon rows one by one (DecodeWalk::kRowByRow) stream faster.
template <int Bits>
void dots_by_block(const DotJob& job, int n_tokens, DecodeWalk walk) {
  const bool decode_rows = n_tokens == 1 && job.w.blocks() == 1;
  if (decode_rows && walk == DecodeWalk::kTiles)
    tiled_dots<YmmStep<Bits>, 4, 4, 8>(job, n_tokens);
  else if (decode_rows)
    row_by_row_dots<Bits>(job);
  else if (job.w.block % 64 == 0)
    tiled_dots<ZmmStep<Bits>, 4, 4, 16>(job, n_tokens);
  else if (job.w.block % 32 == 0)
    tiled_dots<YmmStep<Bits>, 4, 4, 16>(job, n_tokens);
  else
    narrow_block_dots<YmmStep<Bits>>(job, n_tokens);
}

// Decode of short 4-bit rows with one block each (per-channel weights and whole-row
// activations, rows of at most kPairMaxCols columns: tiny models, whose layers sit in cache and
// whose time goes to per-tile work rather than to the weight stream): 16 rows per tile, two per
// zmm (the lower 256 bits one row's 32 bytes of a chunk, the upper the next row's), so each
// chunk costs one load, three unpacking operations and two dots per pair of rows, against the
// activations' low- and high-nibble columns broadcast to both halves; one transposing reduction
// gives all 16 totals in row order.
constexpr int kPairRows = 16;
constexpr int kPairMaxCols = 256;

// [Σ rows 0..15] of v[p] = (row 2p | row 2p + 1), eight int32 lanes per row.
inline __m512i pair_row_totals(const __m512i (&v)[kPairRows / 2]) {
  // Per 128-bit lane k: [Σk v0, Σk v1, Σk v2, Σk v3] and [Σk v4, .., Σk v7] (Σk: that lane's sum).
  const __m512i a = pair_sum64(pair_sum32(v[0], v[1]), pair_sum32(v[2], v[3]));
  const __m512i b = pair_sum64(pair_sum32(v[4], v[5]), pair_sum32(v[6], v[7]));
  // Lanes 0 + 1 (row 2p) and 2 + 3 (row 2p + 1): lane 0 rows 0, 2, 4, 6, lane 2 rows 1, 3, 5, 7.
  const __m512i a2 = _mm512_add_epi32(a, _mm512_shuffle_i32x4(a, a, 0xB1));
  const __m512i b2 = _mm512_add_epi32(b, _mm512_shuffle_i32x4(b, b, 0xB1));
  // [0 2 4 6 | 1 3 5 7 | 8 10 12 14 | 9 11 13 15], then in row order.
  const __m512i mixed = _mm512_shuffle_i32x4(a2, b2, 0x88);
  return _mm512_permutexvar_epi32(
      _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15), mixed);
}

// Rows [r, r_end) of job (one token; r_end − r a multiple of kPairRows).
void pair_row_dots(const DotJob& job, int r, int r_end) {
  const PackedMatrix& w = job.w;
  const size_t row_bytes = w.row_bytes();
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  const __m512i offset = _mm512_set1_epi32(job.offsets[0]);
  for (; r < r_end; r += kPairRows) {
    const uint8_t* rows = w.codes + static_cast<size_t>(r) * row_bytes;
    __m512i acc[kPairRows / 2];
    unrolled<kPairRows / 2>([&](auto p) { acc[p] = _mm512_setzero_si512(); });
    for (int col = 0; col < w.cols_padded; col += kChunk) {
      const __m512i q_lo = _mm512_broadcast_i64x4(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(job.q + col)));
      const __m512i q_hi = _mm512_broadcast_i64x4(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(job.q + col + kChunk / 2)));
      unrolled<kPairRows / 2>([&](auto p) {
        const uint8_t* first = rows + 2 * p * row_bytes + col / 2;
        const __m512i both = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(first))),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(first + row_bytes)), 1);
        acc[p] = _mm512_dpbusd_epi32(acc[p], q_lo, _mm512_and_si512(both, nibble));
        acc[p] = _mm512_dpbusd_epi32(acc[p], q_hi,
                                     _mm512_and_si512(_mm512_srli_epi16(both, 4), nibble));
      });
    }
    _mm512_storeu_si512(job.dots + (r - job.r0),
                        _mm512_sub_epi32(pair_row_totals(acc), offset));
  }
}

// Decode with blocks of 8 columns (o_proj at head size 8, its activations per head): pairs of
// rows as above, the low- and high-nibble columns in accumulators of their own, so every lane
// stays within one block; adjacent lanes then add up to the blocks' sums, which one permutation
// puts in row order, 16 per chunk and pair of rows.
void pair_row_dots8(const DotJob& job, int r, int r_end) {
  const PackedMatrix& w = job.w;
  const size_t row_bytes = w.row_bytes();
  const int nb = w.blocks();
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  // Per 128-bit lane after the shuffles: [lo 2l, lo 2l+1, hi 2l, hi 2l+1] of row A (lanes 0, 1)
  // and B (2, 3): blocks 0 1 4 5 | 2 3 6 7 | the same for B.
  const __m512i order = _mm512_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15);
  for (; r < r_end; r += 2) {
    const uint8_t* first = w.codes + static_cast<size_t>(r) * row_bytes;
    int32_t* out = job.dots + static_cast<size_t>(r - job.r0) * nb;
    for (int col = 0, b = 0; col < w.cols_padded; col += kChunk, b += kChunk / 8) {
      const __m512i q_lo = _mm512_broadcast_i64x4(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(job.q + col)));
      const __m512i q_hi = _mm512_broadcast_i64x4(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(job.q + col + kChunk / 2)));
      const uint8_t* a = first + col / 2;
      const __m512i both = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a))),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + row_bytes)), 1);
      const __m512i lo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q_lo,
                                             _mm512_and_si512(both, nibble));
      const __m512i hi = _mm512_dpbusd_epi32(
          _mm512_setzero_si512(), q_hi, _mm512_and_si512(_mm512_srli_epi16(both, 4), nibble));
      const __m512 lo_f = _mm512_castsi512_ps(lo), hi_f = _mm512_castsi512_ps(hi);
      const __m512i even = _mm512_castps_si512(_mm512_shuffle_ps(lo_f, hi_f, 0x88));
      const __m512i odd = _mm512_castps_si512(_mm512_shuffle_ps(lo_f, hi_f, 0xDD));
      const __m512i sums = _mm512_permutexvar_epi32(order, _mm512_add_epi32(even, odd));
      // Row A's 8 blocks, then row B's, less their offsets.
      const __m256i offsets =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(job.offsets + b));
      const __m512i result = _mm512_sub_epi32(
          sums, _mm512_inserti64x4(_mm512_castsi256_si512(offsets), offsets, 1));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b), _mm512_castsi512_si256(result));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + nb + b),
                          _mm512_extracti64x4_epi64(result, 1));
    }
  }
}

// Decode of 4-bit rows with several blocks of whole 64-column chunks (o_proj's per-head
// activations, weights in groups of 64 or more): tiles of 8 rows, two per zmm as in
// pair_row_dots, and 4 consecutive blocks, one accumulator each per pair of rows; one
// transposing reduction per pair then gives both rows' 4 block sums. tiled_dots's 4-row tiles
// reduce 4 blocks of one row at a time, and at 64-column blocks those reductions took longer
// than the dots (gemv/b64 read 23–24 GB/s from cache and 17–21 from memory, as the machine's
// state goes; this 31–34 and 21–25). Its 8-row tiles of 256-bit steps, one block at a time,
// read 19 GB/s from memory at 64-column blocks, 26 at 128 (this 25 and 23).
constexpr int kBlockTilePairs = 4;
constexpr int kBlockTileRows = 2 * kBlockTilePairs;

// Rows [r, r_end) of job (one token; r_end − r a multiple of kBlockTileRows).
void pair_row_block_dots(const DotJob& job, int r, int r_end) {
  const PackedMatrix& w = job.w;
  const size_t row_bytes = w.row_bytes();
  const int nb = w.blocks(), block = w.block;
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  for (; r < r_end; r += kBlockTileRows) {
    const uint8_t* rows = w.codes + static_cast<size_t>(r) * row_bytes;
    int32_t* out = job.dots + static_cast<size_t>(r - job.r0) * nb;
    for (int b = 0; b < nb; b += 4) {
      const int n_blocks = std::min(4, nb - b);
      __m512i acc[4][kBlockTilePairs];  // [block][pair of rows]; unused blocks stay zero
      unrolled<4>([&](auto j) {
        unrolled<kBlockTilePairs>([&](auto p) { acc[j][p] = _mm512_setzero_si512(); });
      });
      unrolled<4>([&](auto j) {
        if (j >= n_blocks) return;
        for (int col = (b + j) * block; col < (b + j + 1) * block; col += kChunk) {
          const __m512i q_lo = _mm512_broadcast_i64x4(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(job.q + col)));
          const __m512i q_hi = _mm512_broadcast_i64x4(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(job.q + col + kChunk / 2)));
          unrolled<kBlockTilePairs>([&](auto p) {
            const uint8_t* first = rows + 2 * p * row_bytes + col / 2;
            // The same columns kPrefetchTiles tiles ahead, into L2, as dot_tile does.
            const uint8_t* ahead = first + kPrefetchTiles * kBlockTileRows * row_bytes;
            _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T1);
            _mm_prefetch(reinterpret_cast<const char*>(ahead + row_bytes), _MM_HINT_T1);
            const __m512i both = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(first))),
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(first + row_bytes)), 1);
            acc[j][p] = _mm512_dpbusd_epi32(acc[j][p], q_lo, _mm512_and_si512(both, nibble));
            acc[j][p] = _mm512_dpbusd_epi32(
                acc[j][p], q_hi, _mm512_and_si512(_mm512_srli_epi16(both, 4), nibble));
          });
        }
      });
      const __mmask8 stored = static_cast<__mmask8>((1u << n_blocks) - 1);
      const __m512i offsets =
          _mm512_broadcast_i32x4(_mm_maskz_loadu_epi32(stored, job.offsets + b));
      unrolled<kBlockTilePairs>([&](auto p) {
        // Per 128-bit lane: the 4 blocks' sums over that lane's quarter of the pair (lanes 0
        // and 1 the first row, 2 and 3 the second); adding the lanes pairwise completes them.
        const __m512i quarters = pair_sum64(pair_sum32(acc[0][p], acc[1][p]),
                                            pair_sum32(acc[2][p], acc[3][p]));
        const __m512i sums = _mm512_sub_epi32(
            _mm512_add_epi32(quarters, _mm512_shuffle_i32x4(quarters, quarters, 0xB1)), offsets);
        _mm_mask_storeu_epi32(out + 2 * p * nb + b, stored, _mm512_castsi512_si128(sums));
        _mm_mask_storeu_epi32(out + (2 * p + 1) * nb + b, stored,
                              _mm512_extracti32x4_epi32(sums, 2));
      });
    }
  }
}

// [Σ v0, Σ v1, …, Σ v15]: a transposing reduction of 16 vectors.
inline __m512i totals16(const __m512i (&v)[16]) {
  // Per 128-bit lane l of f[k]: [Σl v4k, Σl v4k+1, Σl v4k+2, Σl v4k+3].
  __m512i f[4];
  unrolled<4>([&](auto k) {
    f[k] = pair_sum64(pair_sum32(v[4 * k], v[4 * k + 1]), pair_sum32(v[4 * k + 2], v[4 * k + 3]));
  });
  // [f0 lanes 0+2, f0 1+3, f1 0+2, f1 1+3], the same for f2 and f3; then lane pairs.
  const __m512i a = _mm512_add_epi32(_mm512_shuffle_i32x4(f[0], f[1], 0x44),
                                     _mm512_shuffle_i32x4(f[0], f[1], 0xEE));
  const __m512i b = _mm512_add_epi32(_mm512_shuffle_i32x4(f[2], f[3], 0x44),
                                     _mm512_shuffle_i32x4(f[2], f[3], 0xEE));
  return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, 0x88), _mm512_shuffle_i32x4(a, b, 0xDD));
}

// Rows [r0, r1) of several 4-bit blocks each (o_proj, its activations per head: a block a
// whole number of 64-column chunks), one token, one row after another as row_by_row_dots walks
// them, so a worker's share streams as one sequence; 16 blocks' accumulators reduced together,
// less offsets[b]. The steps multiply the unsigned activation codes x by the stored nibbles
// (w' + 8) or, kCentered, the nibbles by signed x (centered_dots).
template <bool kCentered>
void row_by_row_blocks(const PackedMatrix& w, const uint8_t* x, int r0, int r1,
                       const int32_t* offsets, int32_t* dots) {
  using S = ZmmStep<4>;
  constexpr size_t kStepBytes = S::kCols / 2;
  constexpr int kBlocks = 16;  // accumulators, one per block
  const int nb = w.blocks(), steps = w.block / S::kCols;
  const uint8_t* row = w.codes + static_cast<size_t>(r0) * w.row_bytes();
  int32_t* out = dots;
  for (int r = r0; r < r1; ++r) {
    const uint8_t* q = x;
    for (int b = 0; b < nb; b += kBlocks) {
      const int n_blocks = std::min(kBlocks, nb - b);
      __m512i acc[kBlocks];
      unrolled<kBlocks>([&](auto j) {
        acc[j] = _mm512_setzero_si512();
        if (j >= n_blocks) return;
        for (int s = 0; s < steps; ++s, row += kStepBytes, q += S::kCols) {
          __m512i qv = S::acts(q, 0);
          if (reinterpret_cast<uintptr_t>(row) % 64 == 0) qv = prefetch_ahead_of(row, qv);
          acc[j] = kCentered ? S::dot(acc[j], S::weights(row, 0), qv)
                             : S::dot(acc[j], qv, S::weights(row, 0));
        }
      });
      const __mmask16 stored = static_cast<__mmask16>((1u << n_blocks) - 1);
      _mm512_mask_storeu_epi32(
          out, stored,
          _mm512_sub_epi32(totals16(acc), _mm512_maskz_loadu_epi32(stored, offsets + b)));
      out += n_blocks;
    }
  }
}

void row_by_row_block_dots(const DotJob& job) {
  row_by_row_blocks<false>(job.w, job.q, job.r0, job.r1, job.offsets, job.dots);
}

// KernelTable::centered_dots: the stored nibbles are w' + 8, so each block's sum less 8·Σa.
void centered_dots_avx512(const PackedMatrix& w, const int8_t* a, int r0, int r1, int32_t* dots) {
  const int nb = w.blocks();
  thread_local std::vector<int32_t> storage;
  int32_t* offsets = scratch(storage, nb);
  const __m512i sign = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int b = 0; b < nb; ++b) {
    // Σa = Σ(a + 128) − 128·n, the first as unsigned bytes (a block is whole 64-byte steps).
    __m512i acc = _mm512_setzero_si512();
    for (int j = b * w.block; j < (b + 1) * w.block; j += 64)
      acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_xor_si512(_mm512_loadu_si512(a + j), sign),
                                                  _mm512_setzero_si512()));
    offsets[b] = kNibbleOffset *
                 (static_cast<int32_t>(_mm512_reduce_add_epi64(acc)) - 128 * w.block);
  }
  row_by_row_blocks<true>(w, reinterpret_cast<const uint8_t*>(a), r0, r1, offsets, dots);
}

// kernel(job, r0, r) over the rows of job's whole tiles of `tile` rows, [r0, r); the rest of
// its rows through dots_by_block (one token).
template <class Kernel>
void whole_row_tiles(const DotJob& job, int tile, Kernel kernel, DecodeWalk walk) {
  const int r = job.r0 + (job.r1 - job.r0) / tile * tile;
  kernel(job, job.r0, r);
  if (r == job.r1) return;
  DotJob rest = job;
  rest.r0 = r;
  rest.dots += static_cast<size_t>(r - job.r0) * job.w.blocks();
  dots_by_block<4>(rest, 1, walk);
}

// The vector kernels: any block shape, any number of rows and tokens.
void vector_block_dots(const PackedMatrix& w, const uint8_t* q, size_t q_stride, int n_tokens,
                       int r0, int r1, int32_t* dots, DecodeWalk walk) {
  // Other blocks come only with odd head sizes of tiny models: the plain loops will do.
  if (w.block % 32 != 0 && (32 % w.block != 0 || w.block % 4 != 0))
    return kScalarKernels.block_dots(w, q, q_stride, n_tokens, r0, r1, dots);
  if (w.bits == 8) {
    const DotJob job{w, q, q_stride, r0, r1, dots, nullptr};
    return dots_by_block<8>(job, n_tokens, walk);
  }
  const DotJob job{w, q, q_stride, r0, r1, dots,
                   nibble_offsets(w, q, q_stride, n_tokens, byte_sum)};
  if (n_tokens == 1 && w.blocks() == 1 && w.cols_padded <= kPairMaxCols)
    return whole_row_tiles(job, kPairRows, pair_row_dots, walk);
  if (n_tokens == 1 && w.blocks() > 1 && w.block % kChunk == 0)
    return walk == DecodeWalk::kRowByRow
               ? row_by_row_block_dots(job)
               : whole_row_tiles(job, kBlockTileRows, pair_row_block_dots, walk);
  if (n_tokens == 1 && w.block == 8) return whole_row_tiles(job, 2, pair_row_dots8, walk);
  dots_by_block<4>(job, n_tokens, walk);
}

// ------------------------------------------------------------------- AMX tiles (prefill)
//
// Where the CPU has AMX-INT8 (Sapphire Rapids and later), prefill goes through its tile unit:
// tdpbusd multiplies a 16 × 64 tile of unsigned activation codes (16 tokens, 64 columns, read
// straight from q) by a 64 × 16 tile of signed weight codes (16 rows) into 16 × 16 int32 sums,
// exactly as vpdpbusd does lane by lane, at several times its rate. The weight tile wants each
// row's columns in groups of four bytes down its rows ("VNNI" order), so the packed weights are
// unpacked to signed codes and transposed as 16 × 16 matrices of 4-byte words, once per call
// for all its tokens: the more tokens a call has, the less that costs.
// Tiles: C 0..3 (sums, 2·token tile + row tile), A 4..5 (activations), B 6..7 (weights).

constexpr int kTile = 16;          // tokens per A tile, weight rows per B tile
constexpr int kTileBytes = 1024;   // one tile: 16 rows of 64 bytes

// Whether the tile unit is usable: the CPU has it and Linux grants this process its state.
bool amx_ready() {
  static const bool ready = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const unsigned kAmxTile = 1u << 24, kAmxInt8 = 1u << 25;
    if ((d & kAmxTile) == 0 || (d & kAmxInt8) == 0) return false;
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtileData = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtileData) == 0;
  }();
  return ready;
}

// Rows [0, 16) of v become its columns (as 4-byte words).
inline void transpose16(__m512i (&v)[kTile]) {
  __m512i t[kTile];
  for (int i = 0; i < kTile; i += 2) {
    t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
  }
  for (int i = 0; i < kTile; i += 4) {
    v[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    v[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    v[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    v[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int i = 0; i < kTile; i += 8)
    for (int j = 0; j < 4; ++j) {
      t[i + j] = _mm512_shuffle_i32x4(v[i + j], v[i + j + 4], 0x88);
      t[i + j + 4] = _mm512_shuffle_i32x4(v[i + j], v[i + j + 4], 0xdd);
    }
  for (int j = 0; j < 8; ++j) {
    v[j] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0x88);
    v[j + 8] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0xdd);
  }
}

// The B tiles of rows [r, r + 16), one per 64-column step: word k of row n at word n of row k.
void weight_tiles(const PackedMatrix& w, int r, int steps, uint8_t* out) {
  for (int s = 0; s < steps; ++s) {
    __m512i v[kTile];
    for (int n = 0; n < kTile; ++n) {
      const uint8_t* row = w.codes + static_cast<size_t>(r + n) * w.row_bytes();
      v[n] = w.bits == 8 ? _mm512_loadu_si512(row + s * 64)
                         : _mm512_sub_epi8(unpack_chunk(row + s * 32),
                                           _mm512_set1_epi8(kNibbleOffset));
    }
    transpose16(v);
    for (int k = 0; k < kTile; ++k) _mm512_storeu_si512(out + s * kTileBytes + k * 64, v[k]);
  }
}

// The 64-byte tile configuration (palette 1): every tile 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {kTile, kTile, kTile, kTile, kTile, kTile, kTile, kTile};
};

// TT token tiles (from q) × RT row tiles (weight tiles b_tiles, the second row tile's
// row_tile_bytes on) of sums over each block, stored at (token t, row r) of the tiles into
// out[t·token_stride + r·nb + b].
template <int TT, int RT>
__attribute__((target("amx-tile,amx-int8"))) void amx_tile(const uint8_t* q, size_t q_stride,
                                                           const uint8_t* b_tiles,
                                                           size_t row_tile_bytes,
                                                           int steps_per_block, int nb,
                                                           int32_t* out, size_t token_stride) {
  const __m512i row_index = _mm512_mullo_epi32(
      _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
      _mm512_set1_epi32(nb));
  for (int b = 0; b < nb; ++b) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int s = b * steps_per_block; s < (b + 1) * steps_per_block; ++s) {
      _tile_loadd(4, q + s * 64, q_stride);
      if constexpr (TT == 2) _tile_loadd(5, q + kTile * q_stride + s * 64, q_stride);
      _tile_loadd(6, b_tiles + s * kTileBytes, 64);
      if constexpr (RT == 2) _tile_loadd(7, b_tiles + row_tile_bytes + s * kTileBytes, 64);
      _tile_dpbusd(0, 4, 6);
      if constexpr (RT == 2) _tile_dpbusd(1, 4, 7);
      if constexpr (TT == 2) _tile_dpbusd(2, 5, 6);
      if constexpr (TT == 2 && RT == 2) _tile_dpbusd(3, 5, 7);
    }
    alignas(64) int32_t c[4][kTile * kTile];  // [token][row]
    _tile_stored(0, c[0], 64);
    if constexpr (RT == 2) _tile_stored(1, c[1], 64);
    if constexpr (TT == 2) _tile_stored(2, c[2], 64);
    if constexpr (TT == 2 && RT == 2) _tile_stored(3, c[3], 64);
    for (int tt = 0; tt < TT; ++tt)
      for (int rt = 0; rt < RT; ++rt)
        for (int m = 0; m < kTile; ++m)
          _mm512_i32scatter_epi32(out + (tt * kTile + m) * token_stride + rt * kTile * nb + b,
                                  row_index, _mm512_load_si512(c[2 * tt + rt] + m * kTile), 4);
  }
}

// Tokens [0, n_tokens) × rows [r0, r1), both multiples of 16, with blocks of whole 64-column
// steps; dots as block_dots lays them out, for rows_out rows per token.
__attribute__((target("amx-tile,amx-int8"))) void amx_dots(const PackedMatrix& w,
                                                           const uint8_t* q, size_t q_stride,
                                                           int n_tokens, int r0, int r1,
                                                           int rows_out, int32_t* dots) {
  const int nb = w.blocks(), steps = w.cols_padded / 64, steps_per_block = w.block / 64;
  const size_t token_stride = static_cast<size_t>(rows_out) * nb;  // in dots
  const size_t row_tile_bytes = static_cast<size_t>(steps) * kTileBytes;
  thread_local std::vector<uint8_t> b_storage;  // two row tiles, per worker
  uint8_t* b_tiles = scratch(b_storage, 2 * row_tile_bytes);
  const TileConfig config;
  _tile_loadconfig(&config);
  for (int r = r0; r < r1; r += 2 * kTile) {
    const bool two_r = r1 - r >= 2 * kTile;
    weight_tiles(w, r, steps, b_tiles);
    if (two_r) weight_tiles(w, r + kTile, steps, b_tiles + row_tile_bytes);
    asm volatile("" ::: "memory");  // the tile loads are asm that does not say what it reads
    for (int t = 0; t < n_tokens; t += 2 * kTile) {
      const uint8_t* a = q + t * q_stride;
      int32_t* out = dots + t * token_stride + static_cast<size_t>(r - r0) * nb;
      const bool two_t = n_tokens - t >= 2 * kTile;
      const auto tile = two_t ? (two_r ? amx_tile<2, 2> : amx_tile<2, 1>)
                              : (two_r ? amx_tile<1, 2> : amx_tile<1, 1>);
      tile(a, q_stride, b_tiles, row_tile_bytes, steps_per_block, nb, out, token_stride);
    }
  }
  _tile_release();
}

template <DecodeWalk kWalk>
void block_dots_avx512(const PackedMatrix& w, const uint8_t* q, size_t q_stride, int n_tokens,
                       int r0, int r1, int32_t* dots) {
  // Below two token tiles per call, preparing the weight tiles costs more than the tile unit
  // saves (measured: 16 tokens × 64 rows per call ran ~10% slower than the vector kernels).
  const int tokens16 = n_tokens / kTile * kTile, rows16 = (r1 - r0) / kTile * kTile;
  if (w.block % 64 != 0 || n_tokens < 2 * kTile || rows16 == 0 || !amx_ready())
    return vector_block_dots(w, q, q_stride, n_tokens, r0, r1, dots, kWalk);
  const int nb = w.blocks(), r_amx = r0 + rows16;
  amx_dots(w, q, q_stride, tokens16, r0, r_amx, r1 - r0, dots);
  // The remainders by the vector kernels: the last tokens for all rows, straight into dots;
  // the last rows for the other tokens, through a buffer (their dots interleave with the
  // tile rows').
  if (tokens16 < n_tokens)
    vector_block_dots(w, q + tokens16 * q_stride, q_stride, n_tokens - tokens16, r0, r1,
                      dots + static_cast<size_t>(tokens16) * (r1 - r0) * nb, kWalk);
  if (r_amx < r1) {
    const size_t row_dots = static_cast<size_t>(r1 - r_amx) * nb;
    thread_local std::vector<int32_t> rest_storage;
    int32_t* rest = scratch(rest_storage, tokens16 * row_dots);
    vector_block_dots(w, q, q_stride, tokens16, r_amx, r1, rest, kWalk);
    for (int t = 0; t < tokens16; ++t)
      std::copy_n(&rest[t * row_dots], row_dots,
                  dots + (static_cast<size_t>(t) * (r1 - r0) + rows16) * nb);
  }
}

// ---------------------------------------------------------------- activation quantization

// The first n of 16 lanes (none for n ≤ 0, all for n ≥ 16).
inline __mmask16 first16(int n) {
  return n <= 0 ? 0 : n >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1);
}
// x as it stands, rounded to float: keeps the compiler (this file is built with -mfma) from
// fusing the product into a following subtraction as an FMA, which rounds once instead of
// twice; the scalar reference, built without FMA, rounds twice.
inline float rounded(float x) {
  asm("" : "+v"(x));
  return x;
}

void quantize_acts_avx512(const float* x, int cols, int n_tokens, const ActQuantParams& p,
                          QuantizedActs& a) {
  const int levels = (1 << p.bits) - 1;
  const int seg = a.segment, nseg = a.cols_padded / seg, nblk = a.cols_padded / a.block;
  for (int t = 0; t < n_tokens; ++t) {
    const float* xt = x + static_cast<size_t>(t) * cols;
    uint8_t* qt = &a.q[static_cast<size_t>(t) * a.cols_padded];
    for (int s = 0; s < nseg; ++s) {
      const int begin = s * seg, end = std::min(cols, begin + seg);
      // min(x, lo) picks lo when x is NaN, as std::min(lo, x) does; masked lanes read 0.
      __m512 lo16 = _mm512_setzero_ps(), hi16 = _mm512_setzero_ps();
      for (int j = begin; j < end; j += 16) {
        const __m512 v = _mm512_maskz_loadu_ps(first16(end - j), xt + j);
        lo16 = _mm512_min_ps(v, lo16);
        hi16 = _mm512_max_ps(v, hi16);
      }
      // From here on the scalar reference's operations, in its order.
      const ActQuantParams::Clip clip = p.clip(s);
      const float lo = rounded(_mm512_reduce_min_ps(lo16) * clip.min);
      const float hi = rounded(_mm512_reduce_max_ps(hi16) * clip.max);
      float scale = (hi - lo) / levels;
      if (!(scale > 0.0f)) scale = 1.0f;
      const float inv = 1.0f / scale;
      const int zero = std::clamp(static_cast<int>(std::nearbyint(-lo * inv)), 0, levels);
      const __m512 inv16 = _mm512_set1_ps(inv);
      const __m512i zero16 = _mm512_set1_epi32(zero), levels16 = _mm512_set1_epi32(levels);
      for (int j = begin; j < begin + seg; j += 16) {
        const __m512 v = _mm512_maskz_loadu_ps(first16(end - j), xt + j);
        // cvtps rounds to nearest even, as nearbyint does in the default rounding mode.
        const __m512i code =
            _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v, inv16)), zero16);
        const __m512i clamped =
            _mm512_min_epi32(_mm512_max_epi32(code, _mm512_setzero_si512()), levels16);
        _mm512_mask_cvtepi32_storeu_epi8(qt + j, first16(begin + seg - j), clamped);
      }
      a.scale[static_cast<size_t>(t) * nseg + s] = scale;
      a.zero[static_cast<size_t>(t) * nseg + s] = zero;
    }
    for (int b = 0; b < nblk; ++b)
      a.sums[static_cast<size_t>(t) * nblk + b] = byte_sum(qt + b * a.block, a.block);
  }
}

// ------------------------------------------------------------------------------ attention

// e^x with a relative error of a few 1e-8: x = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor
// series to r^7, times 2^n; 0 below kSoftmaxCutoff, +inf above ln(FLT_MAX) (x is clamped to
// kExpOverflow, which keeps the reduction to r exact; scalef then overflows to +inf).
inline __m512 exp16(__m512 x) {
  const __mmask16 kept = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kSoftmaxCutoff), _CMP_GE_OQ);
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(kSoftmaxCutoff)),
                    _mm512_set1_ps(kExpOverflow));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln2 in two parts, the first exact in few bits, so n·ln2 is subtracted without rounding.
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 poly = _mm512_set1_ps(1.0f / 5040);
#pragma GCC unroll 8
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f})
    poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(c));
  return _mm512_maskz_scalef_ps(kept, poly, n);
}

// The vector operations of attend_simd.h (every partial vector masked) and f16_simd.h.
struct Avx512 {
  using V = __m512;
  using Mask = __mmask16;
  static constexpr int W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static V exp(V x) { return exp16(x); }
  static float reduce_add(V v) { return _mm512_reduce_add_ps(v); }
  static float reduce_max(V v) { return _mm512_reduce_max_ps(v); }
  static Mask first(int n) { return first16(n); }
  static V load_part(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store_part(float* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  static V keep(V v, Mask m) { return _mm512_maskz_mov_ps(m, v); }
  static V max_part(V acc, const float* p, Mask m) {
    return _mm512_mask_max_ps(acc, m, acc, load_part(p, m));
  }
  static __m512i widen(const uint8_t* p, int n) {
    const __m128i raw = n >= 16 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p))
                                : _mm_maskz_loadu_epi8(first16(n), p);  // the row's last bytes
    return _mm512_cvtepu8_epi32(raw);
  }
  static V to_float(__m512i v) { return _mm512_cvtepi32_ps(v); }
  static __m512i low_nibbles(__m512i v) { return _mm512_and_si512(v, _mm512_set1_epi32(0x0F)); }
  static __m512i high_nibbles(__m512i v) { return _mm512_srli_epi32(v, 4); }
  static __m512i index(const int32_t* p) { return _mm512_load_si512(p); }
  static V permute(V v, __m512i order) { return _mm512_permutexvar_ps(order, v); }
  // The byte dots of the V sums (byte_dot_v_sums): vpdpbusd, V codes unsigned, weights signed.
  static constexpr bool kByteDots = true;
  using I = __m512i;
  static I zero_bytes() { return _mm512_setzero_si512(); }
  static I row_bytes(const uint8_t* p, int n) {
    return n >= 64 ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8((uint64_t{1} << n) - 1, p);
  }
  static I weight_bytes(const int8_t* p) {
    int32_t four;
    std::memcpy(&four, p, 4);
    return _mm512_set1_epi32(four);
  }
  static void transpose4(const I (&r)[4], I (&t)[4]) {
    const I a0 = _mm512_unpacklo_epi8(r[0], r[1]), a1 = _mm512_unpackhi_epi8(r[0], r[1]);
    const I b0 = _mm512_unpacklo_epi8(r[2], r[3]), b1 = _mm512_unpackhi_epi8(r[2], r[3]);
    t[0] = _mm512_unpacklo_epi16(a0, b0);
    t[1] = _mm512_unpackhi_epi16(a0, b0);
    t[2] = _mm512_unpacklo_epi16(a1, b1);
    t[3] = _mm512_unpackhi_epi16(a1, b1);
  }
  static I low_codes(I v) { return _mm512_and_si512(v, _mm512_set1_epi8(0x0F)); }
  static I high_codes(I v) { return low_codes(_mm512_srli_epi16(v, 4)); }
  static I byte_dot(I acc, I codes, I weights) { return _mm512_dpbusd_epi32(acc, codes, weights); }
  static V halves_to_float(I hi, I lo) {
    return _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_slli_epi32(hi, 7), lo));
  }
  static void token_scores(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
    token_scores_avx512(kv, q, n_q, n_pos, scores);
  }
  static void kivi_scores(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
    kivi_scores_avx512(kv, q, n_q, n_pos, scores);
  }
};

void attend_avx512(const KvView& kv, const float* q, int n_q, int n_pos, float* scores,
                 float* out) {
  attend_simd<Avx512>(kv, q, n_q, n_pos, scores, out);
}

// ---------------------------------------------------------------------------------- SwiGLU

// gate / (1 + e^−gate) · up, the scalar reference's operations, 16 lanes at a time, the last
// partial vector masked. Below gate ≈ −88.72, e^−gate is +inf and the quotient ±0, as in the
// reference; above gate = 64, exp16 gives 0, where 1 + e^−gate rounds to 1 in the reference too.
void swiglu_avx512(float* gate, const float* up, int n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int i = 0; i < n; i += 16) {
    const __mmask16 m = first16(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
    _mm512_mask_storeu_ps(gate + i, m,
                          _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)),
                                        _mm512_maskz_loadu_ps(m, up + i)));
  }
}

}  // namespace

// Four independent sums of absolute differences from zero (vpsadbw) per 256 bytes.
uint64_t byte_total_avx512(const uint8_t* p, size_t n) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i acc[4] = {zero, zero, zero, zero};
  size_t i = 0;
  for (; i + 256 <= n; i += 256)
    for (int k = 0; k < 4; ++k)
      acc[k] = _mm512_add_epi64(acc[k], _mm512_sad_epu8(_mm512_loadu_si512(p + i + 64 * k), zero));
  const __m512i all = _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3]));
  return static_cast<uint64_t>(_mm512_reduce_add_epi64(all)) + byte_total_scalar(p + i, n - i);
}

namespace {
// One checksum lane step for the four lanes of each range in `lanes`, over their next stripes.
template <class V>
V checksum_step(V lanes, V words, V p1, V p2);
template <>
__m512i checksum_step(__m512i lanes, __m512i words, __m512i p1, __m512i p2) {
  return _mm512_mullo_epi64(_mm512_rol_epi64(_mm512_add_epi64(lanes, _mm512_mullo_epi64(words, p2)), 31), p1);
}
template <>
__m256i checksum_step(__m256i lanes, __m256i words, __m256i p1, __m256i p2) {
  return _mm256_mullo_epi64(_mm256_rol_epi64(_mm256_add_epi64(lanes, _mm256_mullo_epi64(words, p2)), 31), p1);
}

// The lanes of ranges p[0, 2·kPairs), two ranges per register (their stripes side by side).
template <int kPairs>
void checksum_pairs(const uint8_t* const* p, size_t bytes, uint64_t* lanes) {
  const __m512i p1 = _mm512_set1_epi64(static_cast<long long>(format::kChecksumP1));
  const __m512i p2 = _mm512_set1_epi64(static_cast<long long>(format::kChecksumP2));
  __m512i acc[kPairs];
  for (int k = 0; k < kPairs; ++k) acc[k] = _mm512_loadu_si512(lanes + 8 * k);
  for (size_t i = 0; i < bytes; i += 32)
    for (int k = 0; k < kPairs; ++k) {
      const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p[2 * k] + i));
      const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p[2 * k + 1] + i));
      acc[k] = checksum_step(acc[k], _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), p1, p2);
    }
  for (int k = 0; k < kPairs; ++k) _mm512_storeu_si512(lanes + 8 * k, acc[k]);
}

void checksum_lanes_avx512(const uint8_t* const* p, int n, size_t bytes, uint64_t* lanes) {
  const int pairs = n / 2;
  if (pairs == 2) checksum_pairs<2>(p, bytes, lanes);
  if (pairs == 1) checksum_pairs<1>(p, bytes, lanes);
  if (n % 2 == 0) return;
  // The odd range out, in a 256-bit register.
  const __m256i p1 = _mm256_set1_epi64x(static_cast<long long>(format::kChecksumP1));
  const __m256i p2 = _mm256_set1_epi64x(static_cast<long long>(format::kChecksumP2));
  const uint8_t* last = p[n - 1];
  uint64_t* last_lanes = lanes + 4 * (n - 1);
  __m256i acc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(last_lanes));
  for (size_t i = 0; i < bytes; i += 32)
    acc = checksum_step(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(last + i)), p1, p2);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(last_lanes), acc);
}
}  // namespace

// centered_dots walks rows one by one, as Intel CPUs stream them faster; Zen 4's tiles keep
// the block sums (with centered_dots there, o_proj took 14.0-14.3% of TinyLlama's one-thread
// decode against 11.5-12.0%).
const KernelTable kAvx512Kernels = {"avx512", block_dots_avx512<DecodeWalk::kTiles>, nullptr,
                                    quantize_acts_avx512, attend_avx512, hadamard_avx512,
                                    byte_total_avx512, swiglu_avx512, vecmat_f16_simd<Avx512>,
                                    f16_to_f32_simd<Avx512>, checksum_lanes_avx512};
const KernelTable kAvx512RowByRowKernels = [] {
  KernelTable t = kAvx512Kernels;
  t.block_dots = block_dots_avx512<DecodeWalk::kRowByRow>;
  t.centered_dots = centered_dots_avx512;
  return t;
}();

}  // namespace rotor
