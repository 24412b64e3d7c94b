// AVX-512 KIVI K scores (kv_kernels.h): kivi_simd.h over 16-lane vectors, half the instructions
// per code of the AVX2 version. A group whose channel holds fewer than 16 bytes (4-bit codes in
// groups of 16) takes the AVX2 version.
#include "engine/kernels/avx512_intrinsics.h"

#include "engine/kernels/kivi_simd.h"

namespace rotor {

namespace {

struct Avx512 {
  using V = __m512;
  static constexpr int W = 16;
  static V set1(float v) { return _mm512_set1_ps(v); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static __m512i widen(const uint8_t* p) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static V to_float(__m512i v) { return _mm512_cvtepi32_ps(v); }
  static __m512i low_nibbles(__m512i v) { return _mm512_and_si512(v, _mm512_set1_epi32(0x0F)); }
  static __m512i high_nibbles(__m512i v) { return _mm512_srli_epi32(v, 4); }
};

}  // namespace

void kivi_scores_avx512(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
  if (kv.k_group * kv.bits / 8 % Avx512::W != 0) return kivi_scores_avx2(kv, q, n_q, n_pos, scores);
  kivi_scores(kv, q, n_q, n_pos, scores, kivi_group_scores_of<Avx512>);
}

}  // namespace rotor
