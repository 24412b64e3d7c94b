// AVX-512 KIVI K scores (kv_kernels.h): kivi_simd.h over 16 positions per vector, the pair
// dots by vpdpwssd (AVX512-VNNI, which the AVX-512 kernels require).
#include "engine/kernels/avx512_intrinsics.h"

#include "engine/kernels/kivi_simd.h"

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
  static I high_nibbles(I v) { return _mm512_srli_epi16(v, 4); }
  static I pair(int16_t a, int16_t b) { return _mm512_set1_epi32(pair_bits(a, b)); }
  static I dot(I acc, I x, I y) { return _mm512_dpwssd_epi32(acc, x, y); }
  static I add(I a, I b) { return _mm512_add_epi32(a, b); }
  static void scores(float* p, I dots, float step, float constant) {
    _mm512_storeu_ps(p, _mm512_fmadd_ps(_mm512_set1_ps(step), _mm512_cvtepi32_ps(dots),
                                        _mm512_set1_ps(constant)));
  }
};

}  // namespace

void kivi_scores_avx512(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
  kivi_walk(kv, q, n_q, n_pos, scores, kivi_group_scores_of<Avx512>);
}

}  // namespace rotor
