// The AVX2 block dots (kernels.h), written once over how a 32-byte step multiplies unsigned
// activation codes by weight codes and adds them into int32 lanes: Dots::Pairs in avx2.cpp
// (maddubs into int16 pairs, madd to widen) and Dots::Vnni in avx2_vnni.cpp (AVX-VNNI's
// vpdpbusd, one instruction for the three, where the CPU has it). Either way a lane holds the
// exact sum of four consecutive columns, so both equal the scalar reference. Included by those
// two files only (internal linkage: each keeps its own compiler flags).
//
// Dots: chunk(acc, q_lo, w_lo, q_hi, w_hi) and half(acc, q, w), acc plus the dots of 32
// unsigned activation bytes with 32 weight bytes of 0..15 (two such pairs for chunk). Only
// 4-bit weights go through here: 8-bit ones keep avx2.cpp's steps in either table.
//
// Work goes in register tiles (x86_tiles.h): in prefill 4 rows × 2 tokens, so each weight step
// is loaded and unpacked once for both tokens and each activation step once for all four rows;
// in decode 8 rows (one large block at a time), or 2 rows × (with small blocks) 4 consecutive
// blocks. At the end of a block the tile's accumulators are reduced four at a time.
#pragma once
#include <immintrin.h>

#include "engine/kernels/kernels.h"
#include "engine/kernels/x86_tiles.h"

namespace rotor {
namespace {

inline __m256i load256(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Σ p[0, n).
inline int32_t byte_sum(const uint8_t* p, int n) {
  __m256i acc = _mm256_setzero_si256();
  int j = 0;
  for (; j + 32 <= n; j += 32)
    acc = _mm256_add_epi64(acc, _mm256_sad_epu8(load256(p + j), _mm256_setzero_si256()));
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  int32_t sum = static_cast<int32_t>(_mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1));
  for (; j < n; ++j) sum += p[j];
  return sum;
}

// The low nibble of every byte.
inline __m256i low_nibbles(__m256i bytes) {
  return _mm256_and_si256(bytes, _mm256_set1_epi8(0x0F));
}

// A step along a row: its weights W (per row), its activations Q (per token) and their dot
// added into an int32 accumulator. No step straddles two blocks.

// 4-bit weights, blocks that are multiples of 64: one chunk, both nibble halves of one load.
template <class Dots>
struct ChunkStep4 {
  using V = __m256i;
  struct W { __m256i lo, hi; };  // columns 0..31 and 32..63 of the chunk
  struct Q { __m256i lo, hi; };
  static constexpr int kCols = 64;
  static constexpr int kBits = 4;
  static constexpr int kOffset = kNibbleOffset;  // in the stored codes
  static V zero() { return _mm256_setzero_si256(); }
  static Q acts(const uint8_t* q, size_t col) {
    return {load256(q + col), load256(q + col + 32)};
  }
  static W weights(const uint8_t* row, size_t col) {
    const __m256i bytes = load256(row + col / 2);
    return {low_nibbles(bytes), low_nibbles(_mm256_srli_epi16(bytes, 4))};
  }
  static V dot(V acc, const Q& q, const W& w) { return Dots::chunk(acc, q.lo, w.lo, q.hi, w.hi); }
};

// 4-bit weights, blocks that are odd multiples of 32: one nibble half of a chunk per step.
template <class Dots>
struct HalfStep4 {
  using V = __m256i;
  using W = __m256i;
  using Q = __m256i;
  static constexpr int kCols = 32;
  static constexpr int kBits = 4;
  static constexpr int kOffset = kNibbleOffset;
  static V zero() { return _mm256_setzero_si256(); }
  static Q acts(const uint8_t* q, size_t col) { return load256(q + col); }
  static W weights(const uint8_t* row, size_t col) {
    const __m256i bytes = load256(row + col / kChunk * (kChunk / 2));
    return low_nibbles(_mm256_srl_epi16(bytes, _mm_cvtsi32_si128(col % kChunk == 0 ? 0 : 4)));
  }
  static V dot(V acc, Q q, W w) { return Dots::half(acc, q, w); }
};

// Block dots of 4-bit weights (w.bits == 4).
template <class Dots>
void nibble_block_dots(const PackedMatrix& w, const uint8_t* q, size_t q_stride, int n_tokens,
                       int r0, int r1, int32_t* dots) {
  const bool narrow = w.block % 32 != 0;
  // Other blocks come only with odd head sizes of tiny models, where the plain loops will do.
  if (narrow && (32 % w.block != 0 || w.block % 4 != 0))
    return kScalarKernels.block_dots(w, q, q_stride, n_tokens, r0, r1, dots);
  const DotJob job{w, q, q_stride, r0, r1, dots,
                   nibble_offsets(w, q, q_stride, n_tokens, byte_sum)};
  if (narrow)
    narrow_block_dots<HalfStep4<Dots>>(job, n_tokens);
  else if (w.block % 64 == 0)
    tiled_dots<ChunkStep4<Dots>, 2, 2, 8>(job, n_tokens);
  else
    tiled_dots<HalfStep4<Dots>, 2, 2, 8>(job, n_tokens);
}

}  // namespace
}  // namespace rotor
