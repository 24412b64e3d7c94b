// AVX2 KIVI K scores (kv_kernels.h): kivi_simd.h over 8 positions per vector, the pair dots
// by pmaddwd.
#include <immintrin.h>

#include "engine/kernels/kivi_simd.h"

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
  static I high_nibbles(I v) { return _mm256_srli_epi16(v, 4); }
  static I pair(int16_t a, int16_t b) { return _mm256_set1_epi32(pair_bits(a, b)); }
  static I dot(I acc, I x, I y) { return _mm256_add_epi32(acc, _mm256_madd_epi16(x, y)); }
  static I add(I a, I b) { return _mm256_add_epi32(a, b); }
  static void scores(float* p, I dots, float step, float constant) {
    _mm256_storeu_ps(p, _mm256_fmadd_ps(_mm256_set1_ps(step), _mm256_cvtepi32_ps(dots),
                                        _mm256_set1_ps(constant)));
  }
};

}  // namespace

void kivi_scores_avx2(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
  kivi_walk(kv, q, n_q, n_pos, scores, kivi_group_scores_of<Avx2>);
}

}  // namespace rotor
