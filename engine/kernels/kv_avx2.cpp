// AVX2 KIVI K scores (kv_kernels.h): kivi_simd.h over 8-lane vectors.
#include <immintrin.h>

#include "engine/kernels/kivi_simd.h"

namespace rotor {

namespace {

struct Avx2 {
  using V = __m256;
  static constexpr int W = 8;
  static V set1(float v) { return _mm256_set1_ps(v); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static __m256i widen(const uint8_t* p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static V to_float(__m256i v) { return _mm256_cvtepi32_ps(v); }
  static __m256i low_nibbles(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi32(0x0F)); }
  static __m256i high_nibbles(__m256i v) { return _mm256_srli_epi32(v, 4); }
};

}  // namespace

void kivi_scores_avx2(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
  kivi_scores(kv, q, n_q, n_pos, scores, kivi_group_scores_of<Avx2>);
}

}  // namespace rotor
