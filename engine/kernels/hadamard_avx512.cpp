// The Hadamard pass with AVX-512 (16 floats per vector): hadamard_simd.h over the ops below.
#include <immintrin.h>

#include "engine/kernels/hadamard_simd.h"

namespace rotor {

namespace {

struct Avx512 {
  using V = __m512;
  static constexpr int W = 16;
  // 24 accumulators (8 blocks × 48 columns): each h row chunk feeds 8 blocks per load.
  static constexpr int kBlocks = 8, kCols = 3;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static __mmask16 first(int k) { return static_cast<__mmask16>((1u << k) - 1); }
  static V load_part(const float* p, int k) { return _mm512_maskz_loadu_ps(first(k), p); }
  static void store_part(float* p, V v, int k) { _mm512_mask_storeu_ps(p, first(k), v); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static constexpr bool kSignBits = true;
  // −1 in the lanes whose bit is set, +1 in the others: the word is the blend's mask.
  static V signs(uint16_t word) {
    return _mm512_mask_blend_ps(word, _mm512_set1_ps(1.0f), _mm512_set1_ps(-1.0f));
  }
  // Stage h: lane i takes partner + v (bit h of i clear) or partner − v (set); v·(±1) is exact,
  // so the fused multiply-add rounds exactly like the scalar add/sub.
  static V fwht(V v) {
    const V s1 = _mm512_setr_ps(1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1);
    const V s2 = _mm512_setr_ps(1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1);
    const V s4 = _mm512_setr_ps(1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1);
    const V s8 = _mm512_setr_ps(1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1);
    // The all-lanes masked forms: GCC 12's unmasked ones trip -Wmaybe-uninitialized.
    constexpr __mmask16 kAll = 0xFFFF;
    v = _mm512_fmadd_ps(v, s1, _mm512_mask_permute_ps(v, kAll, v, 0xB1));
    v = _mm512_fmadd_ps(v, s2, _mm512_mask_permute_ps(v, kAll, v, 0x4E));
    v = _mm512_fmadd_ps(v, s4, _mm512_mask_shuffle_f32x4(v, kAll, v, v, 0xB1));
    return _mm512_fmadd_ps(v, s8, _mm512_mask_shuffle_f32x4(v, kAll, v, v, 0x4E));
  }
};

}  // namespace

void hadamard_avx512(const HadamardPlan& p, float* x, int rows, size_t stride) {
  hadamard_rows<Avx512>(p, x, rows, stride);
}

}  // namespace rotor
