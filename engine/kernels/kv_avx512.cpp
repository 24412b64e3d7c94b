// AVX-512 K scores (kv_kernels.h): kivi_simd.h and token_simd.h over 16 int32 lanes, the pair
// dots by vpdpwssd (AVX512-VNNI, which the AVX-512 kernels require).
#include "engine/kernels/avx512_intrinsics.h"

#include "engine/kernels/kivi_simd.h"
#include "engine/kernels/token_simd.h"

namespace rotor {

namespace {

struct Avx512 {
  using I = __m512i;
  static constexpr int kMaxHeads = 4;
  static constexpr int W = 16;
  static I zero() { return _mm512_setzero_si512(); }
  static I pairs(const uint8_t* p) {
    return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static I low_nibbles(I v) { return _mm512_and_si512(v, _mm512_set1_epi16(0x0F)); }
  template <int N>
  static I shift_right(I v) {
    return _mm512_srli_epi16(v, N);
  }
  static I low_bytes(I v) { return _mm512_and_si512(v, _mm512_set1_epi16(0xFF)); }
  static I row(const uint8_t* p, int n) {
    return n >= 64 ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8((uint64_t{1} << n) - 1, p);
  }
  static I words(const int16_t* p) { return _mm512_loadu_si512(p); }
  static I pair(int16_t a, int16_t b) { return _mm512_set1_epi32(pair_bits(a, b)); }
  static I dot(I acc, I x, I y) { return _mm512_dpwssd_epi32(acc, x, y); }
  static I add(I a, I b) { return _mm512_add_epi32(a, b); }
  template <int Level>
  static I fold(I a, I b) {
    if constexpr (Level == 1)
      return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    else if constexpr (Level == 2)
      return _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
    else  // the 128-bit lanes: a's even and odd ones and b's, side by side
      return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  static __m512 load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static void dot_scores(float* p, I dots, const uint16_t* scale, const uint16_t* min,
                         float step, float sum) {
    const __m512 dot_step = _mm512_mul_ps(_mm512_set1_ps(step), _mm512_cvtepi32_ps(dots));
    _mm512_storeu_ps(p, _mm512_fmadd_ps(load_f16(scale), dot_step,
                                        _mm512_mul_ps(load_f16(min), _mm512_set1_ps(sum))));
  }
  static void scores(float* p, I dots, float step, float constant) {
    _mm512_storeu_ps(p, _mm512_fmadd_ps(_mm512_set1_ps(step), _mm512_cvtepi32_ps(dots),
                                        _mm512_set1_ps(constant)));
  }
};

}  // namespace

void token_scores_avx512(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
  token_walk(kv, q, n_q, n_pos, scores, token_dots_simd<Avx512>);
}

void kivi_scores_avx512(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
  kivi_walk(kv, q, n_q, n_pos, scores, kivi_group_scores_of<Avx512>,
            kAvx512Kernels.f16_to_f32);
}

}  // namespace rotor
