// AVX2 K scores (kv_kernels.h): kivi_simd.h and token_simd.h over 8 int32 lanes, the pair
// dots by pmaddwd.
#include <immintrin.h>

#include <cstring>

#include "engine/kernels/kivi_simd.h"
#include "engine/kernels/token_simd.h"

namespace rotor {

namespace {

struct Avx2 {
  using I = __m256i;
  // Four heads' sums and q' pairs would take all 16 registers: the spills cost more than the
  // widening they share (TinyLlama's shape, 8 query heads per KV head, ran 15% slower).
  static constexpr int kMaxHeads = 2;
  static constexpr int W = 8;
  static I zero() { return _mm256_setzero_si256(); }
  static I pairs(const uint8_t* p) {
    return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static I low_nibbles(I v) { return _mm256_and_si256(v, _mm256_set1_epi16(0x0F)); }
  template <int N>
  static I shift_right(I v) {
    return _mm256_srli_epi16(v, N);
  }
  static I low_bytes(I v) { return _mm256_and_si256(v, _mm256_set1_epi16(0xFF)); }
  static I row(const uint8_t* p, int n) {
    if (__builtin_expect(n >= 32, 1))
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    // A row's last bytes (tiny heads: every position): 8 or 16 by a plain load, other whole
    // 4-byte lanes by a masked one, the rest through a buffer.
    const __m128i* p128 = reinterpret_cast<const __m128i*>(p);
    if (n == 16) return _mm256_zextsi128_si256(_mm_loadu_si128(p128));
    if (n == 8) return _mm256_zextsi128_si256(_mm_loadl_epi64(p128));
    if (n % 4 == 0) {
      const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      return _mm256_maskload_epi32(reinterpret_cast<const int*>(p),
                                   _mm256_cmpgt_epi32(_mm256_set1_epi32(n / 4), lane));
    }
    alignas(32) uint8_t part[32] = {};
    std::memcpy(part, p, n);
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(part));
  }
  static I words(const int16_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  static I pair(int16_t a, int16_t b) { return _mm256_set1_epi32(pair_bits(a, b)); }
  static I dot(I acc, I x, I y) { return _mm256_add_epi32(acc, _mm256_madd_epi16(x, y)); }
  static I add(I a, I b) { return _mm256_add_epi32(a, b); }
  template <int Level>
  static I fold(I a, I b) {
    if constexpr (Level == 1)
      return _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
    else if constexpr (Level == 2)
      return _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
    else  // the 128-bit lanes: a's two and b's, side by side
      return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                              _mm256_permute2x128_si256(a, b, 0x31));
  }
  static __m256 load_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static void dot_scores(float* p, I dots, const uint16_t* scale, const uint16_t* min,
                         float step, float sum) {
    const __m256 dot_step = _mm256_mul_ps(_mm256_set1_ps(step), _mm256_cvtepi32_ps(dots));
    _mm256_storeu_ps(p, _mm256_fmadd_ps(load_f16(scale), dot_step,
                                        _mm256_mul_ps(load_f16(min), _mm256_set1_ps(sum))));
  }
  static void scores(float* p, I dots, float step, float constant) {
    _mm256_storeu_ps(p, _mm256_fmadd_ps(_mm256_set1_ps(step), _mm256_cvtepi32_ps(dots),
                                        _mm256_set1_ps(constant)));
  }
};

}  // namespace

void token_scores_avx2(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
  token_walk(kv, q, n_q, n_pos, scores, token_dots_simd<Avx2>);
}

void kivi_scores_avx2(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
  kivi_walk(kv, q, n_q, n_pos, scores, kivi_group_scores_of<Avx2>, kAvx2Kernels.f16_to_f32);
}

}  // namespace rotor
