// AVX2 kernels.
//
// Block dots: avx2_block_dots.h with maddubs and madd (Pairs below); on CPUs with AVX-VNNI the
// table of avx2_vnni.cpp takes its place. Every sum is exact, so the results equal the scalar
// reference.
//
// Activation quantization repeats the scalar reference's float operations lane by lane, so
// codes, scales and zero points are bit-identical. Attention is attend_simd.h over 8 lanes.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/kernels/attend_simd.h"
#include "engine/kernels/avx2_block_dots.h"
#include "engine/kernels/f16_simd.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/kv_kernels.h"
#include "engine/kernels/x86_tiles.h"

namespace rotor {

namespace {

// ---------------------------------------------------------------------------- block dots

inline __m128i load128(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// 8-bit weights: both operands widened to int16, then madd (lane i sums columns 2i, 2i + 1,
// 2i + 16 and 2i + 17 of the step); 2·255·128 > 32767 would saturate maddubs' int16 pairs.
struct ByteStep8 {
  using V = __m256i;
  struct W { __m256i lo, hi; };  // columns 0..15 and 16..31
  struct Q { __m256i lo, hi; };
  static constexpr int kCols = 32;
  static constexpr int kBits = 8;
  static constexpr int kOffset = 0;
  static V zero() { return _mm256_setzero_si256(); }
  static Q acts(const uint8_t* q, size_t col) {
    return {_mm256_cvtepu8_epi16(load128(q + col)), _mm256_cvtepu8_epi16(load128(q + col + 16))};
  }
  static W weights(const uint8_t* row, size_t col) {
    return {_mm256_cvtepi8_epi16(load128(row + col)),
            _mm256_cvtepi8_epi16(load128(row + col + 16))};
  }
  static V dot(V acc, const Q& q, const W& w) {
    return _mm256_add_epi32(_mm256_add_epi32(acc, _mm256_madd_epi16(q.lo, w.lo)),
                            _mm256_madd_epi16(q.hi, w.hi));
  }
};

// int32 sums of adjacent int16 pairs.
inline __m256i widen_pairs(__m256i v) { return _mm256_madd_epi16(v, _mm256_set1_epi16(1)); }

// maddubs multiplies the unsigned activation codes by the 4-bit weight codes (as stored,
// 0..15) and adds pairs into int16, madd widens to int32. A pair is at most 2·255·15 = 7650, so
// even two pairs add without int16 saturation.
struct Pairs {
  static __m256i chunk(__m256i acc, __m256i q_lo, __m256i w_lo, __m256i q_hi, __m256i w_hi) {
    const __m256i pairs =
        _mm256_add_epi16(_mm256_maddubs_epi16(q_lo, w_lo), _mm256_maddubs_epi16(q_hi, w_hi));
    return _mm256_add_epi32(acc, widen_pairs(pairs));
  }
  static __m256i half(__m256i acc, __m256i q, __m256i w) {
    return _mm256_add_epi32(acc, widen_pairs(_mm256_maddubs_epi16(q, w)));
  }
};

void block_dots_avx2(const PackedMatrix& w, const uint8_t* q, size_t q_stride, int n_tokens,
                     int r0, int r1, int32_t* dots) {
  if (w.bits == 4) return nibble_block_dots<Pairs>(w, q, q_stride, n_tokens, r0, r1, dots);
  // Narrow blocks of 8-bit weights, whose dot lanes hold columns 16 apart, take the plain loops.
  if (w.block % 32 != 0)
    return kScalarKernels.block_dots(w, q, q_stride, n_tokens, r0, r1, dots);
  const DotJob job{w, q, q_stride, r0, r1, dots, nullptr};
  tiled_dots<ByteStep8, 2, 2, 8>(job, n_tokens);
}

// ---------------------------------------------------------------- activation quantization

// All-ones in the first n lanes (none for n ≤ 0, all for n ≥ 8).
inline __m256i first8(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline float min8(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_min_ss(m, _mm_movehdup_ps(m)));
}
inline float max8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

// x as it stands, rounded to float: keeps the compiler (this file is built with -mfma) from
// fusing the product into a following subtraction as an FMA, which rounds once instead of
// twice; the scalar reference, built without FMA, rounds twice.
inline float rounded(float x) {
  asm("" : "+x"(x));
  return x;
}

void quantize_acts_avx2(const float* x, int cols, int n_tokens, const ActQuantParams& p,
                        QuantizedActs& a) {
  const int levels = (1 << p.bits) - 1;
  const int seg = a.segment, nseg = a.cols_padded / seg, nblk = a.cols_padded / a.block;
  for (int t = 0; t < n_tokens; ++t) {
    const float* xt = x + static_cast<size_t>(t) * cols;
    uint8_t* qt = &a.q[static_cast<size_t>(t) * a.cols_padded];
    for (int s = 0; s < nseg; ++s) {
      const int begin = s * seg, end = std::min(cols, begin + seg);
      // min(x, lo) picks lo when x is NaN, as std::min(lo, x) does; masked lanes read 0.
      __m256 lo8 = _mm256_setzero_ps(), hi8 = _mm256_setzero_ps();
      for (int j = begin; j < end; j += 8) {
        const __m256 v = _mm256_maskload_ps(xt + j, first8(end - j));
        lo8 = _mm256_min_ps(v, lo8);
        hi8 = _mm256_max_ps(v, hi8);
      }
      // From here on the scalar reference's operations, in its order.
      const ActQuantParams::Clip clip = p.clip(s);
      const float lo = rounded(min8(lo8) * clip.min);
      const float hi = rounded(max8(hi8) * clip.max);
      float scale = (hi - lo) / levels;
      if (!(scale > 0.0f)) scale = 1.0f;
      const float inv = 1.0f / scale;
      const int zero = std::clamp(static_cast<int>(std::nearbyint(-lo * inv)), 0, levels);
      const __m256 inv8 = _mm256_set1_ps(inv);
      const __m256i zero8 = _mm256_set1_epi32(zero), levels8 = _mm256_set1_epi32(levels);
      for (int j = begin; j < begin + seg; j += 8) {
        const __m256 v = _mm256_maskload_ps(xt + j, first8(end - j));
        // cvtps rounds to nearest even, as nearbyint does in the default rounding mode.
        const __m256i code =
            _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v, inv8)), zero8);
        const __m256i clamped =
            _mm256_min_epi32(_mm256_max_epi32(code, _mm256_setzero_si256()), levels8);
        const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(clamped),
                                               _mm256_extracti128_si256(clamped, 1));
        const __m128i bytes = _mm_packus_epi16(words, words);
        if (begin + seg - j >= 8) {
          _mm_storel_epi64(reinterpret_cast<__m128i*>(qt + j), bytes);
        } else {
          alignas(16) uint8_t tmp[16];
          _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes);
          std::memcpy(qt + j, tmp, begin + seg - j);
        }
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
// series to r^7, times 2^n built in the exponent bits; 0 below kSoftmaxCutoff, +inf above
// ln(FLT_MAX) (x is clamped to [kSoftmaxCutoff, kExpOverflow], so −92 ≤ n ≤ 128).
inline __m256 exp8(__m256 x) {
  const __m256 kept = _mm256_cmp_ps(x, _mm256_set1_ps(kSoftmaxCutoff), _CMP_GE_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kSoftmaxCutoff)),
                    _mm256_set1_ps(kExpOverflow));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln2 in two parts, the first exact in few bits, so n·ln2 is subtracted without rounding.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  // 2·e^r (every coefficient doubled, which is exact) times 2^(n−1): n = 128 then overflows to
  // +inf in the product instead of wrapping the exponent bits.
  __m256 poly = _mm256_set1_ps(2.0f / 5040);
#pragma GCC unroll 8
  for (float c : {2.0f / 720, 2.0f / 120, 2.0f / 24, 2.0f / 6, 1.0f, 2.0f, 2.0f})
    poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(c));
  const __m256i pow2 =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(126)), 23);
  return _mm256_and_ps(_mm256_mul_ps(poly, _mm256_castsi256_ps(pow2)), kept);
}

// The vector operations of attend_simd.h and f16_simd.h.
struct Avx2 {
  using V = __m256;
  using Mask = __m256i;
  static constexpr int W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V load_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static V exp(V x) { return exp8(x); }
  static float reduce_add(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  static float reduce_max(V v) { return max8(v); }
  static Mask first(int n) { return first8(n); }
  static V load_part(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  static void store_part(float* p, Mask m, V v) { _mm256_maskstore_ps(p, m, v); }
  static V keep(V v, Mask m) { return _mm256_and_ps(v, _mm256_castsi256_ps(m)); }
  static V max_part(V acc, const float* p, Mask m) {
    return _mm256_max_ps(acc, _mm256_blendv_ps(acc, load_part(p, m), _mm256_castsi256_ps(m)));
  }
  static __m256i widen(const uint8_t* p, int n) {
    __m128i raw;
    // Without the hint GCC lays the whole-group load out of line (a jump there and back).
    if (__builtin_expect(n >= 8, 1)) {
      raw = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    } else {  // the row's last bytes
      uint64_t word = 0;
      for (int i = 0; i < n; ++i) word |= static_cast<uint64_t>(p[i]) << (8 * i);
      raw = _mm_cvtsi64_si128(static_cast<int64_t>(word));
    }
    return _mm256_cvtepu8_epi32(raw);
  }
  static V to_float(__m256i v) { return _mm256_cvtepi32_ps(v); }
  static __m256i low_nibbles(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi32(0x0F)); }
  static __m256i high_nibbles(__m256i v) { return _mm256_srli_epi32(v, 4); }
  static __m256i index(const int32_t* p) {
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
  }
  static V permute(V v, __m256i order) { return _mm256_permutevar8x32_ps(v, order); }
  // The V sums go in float: pmaddubsw's byte dots (three instructions each, where vpdpbusd
  // takes one) were slower than the float sums for groups of 4 heads (see BENCHMARKS.md).
  static constexpr bool kByteDots = false;
  static void token_scores(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
    token_scores_avx2(kv, q, n_q, n_pos, scores);
  }
  static void kivi_scores(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
    kivi_scores_avx2(kv, q, n_q, n_pos, scores);
  }
};

void attend_avx2(const KvView& kv, const float* q, int n_q, int n_pos, float* scores,
                 float* out) {
  attend_simd<Avx2>(kv, q, n_q, n_pos, scores, out);
}

// ---------------------------------------------------------------------------------- SwiGLU

// gate / (1 + e^−gate) · up, the scalar reference's operations. Below gate ≈ −88.72, e^−gate
// is +inf and the quotient ±0, as in the reference; above gate = 64, exp8 gives 0, where
// 1 + e^−gate rounds to 1 in the reference too.
inline __m256 swiglu8(__m256 gate, __m256 up) {
  const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), gate));
  return _mm256_mul_ps(_mm256_div_ps(gate, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), up);
}

// Whole vectors with plain loads and stores (a masked store is slow on some cores), then the
// last partial vector masked.
void swiglu_avx2(float* gate, const float* up, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(gate + i, swiglu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  if (i < n) {
    const __m256i m = first8(n - i);
    _mm256_maskstore_ps(gate + i, m,
                        swiglu8(_mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m)));
  }
}

}  // namespace

// Four independent sums of absolute differences from zero (vpsadbw) per 128 bytes.
uint64_t byte_total_avx2(const uint8_t* p, size_t n) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i acc[4] = {zero, zero, zero, zero};
  size_t i = 0;
  for (; i + 128 <= n; i += 128)
    for (int k = 0; k < 4; ++k)
      acc[k] = _mm256_add_epi64(
          acc[k], _mm256_sad_epu8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32 * k)),
                                  zero));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes),
                     _mm256_add_epi64(_mm256_add_epi64(acc[0], acc[1]), _mm256_add_epi64(acc[2], acc[3])));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + byte_total_scalar(p + i, n - i);
}

const KernelTable kAvx2Kernels = {"avx2", block_dots_avx2, nullptr, quantize_acts_avx2,
                                   attend_avx2, hadamard_avx2, byte_total_avx2, swiglu_avx2,
                                   vecmat_f16_simd<Avx2>, f16_to_f32_simd<Avx2>,
                                   checksum_lanes_scalar};  // AVX2 has no 64-bit multiply

}  // namespace rotor
