// The Hadamard pass with AVX2 + FMA (8 floats per vector): hadamard_simd.h over the ops below.
#include <immintrin.h>

#include "engine/kernels/hadamard_simd.h"

namespace rotor {

namespace {

struct Avx2 {
  using V = __m256;
  static constexpr int W = 8;
  // 8 accumulators (4 blocks × 16 columns) of the 16 registers, leaving room for h and x.
  static constexpr int kBlocks = 4, kCols = 2;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static __m256i first(int k) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V load_part(const float* p, int k) { return _mm256_maskload_ps(p, first(k)); }
  static void store_part(float* p, V v, int k) { _mm256_maskstore_ps(p, first(k), v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static constexpr bool kSignBits = false;
  // Stage h: lane i takes partner + v (bit h of i clear) or partner − v (set); v·(±1) is exact,
  // so the fused multiply-add rounds exactly like the scalar add/sub.
  static V fwht(V v) {
    const V s1 = _mm256_setr_ps(1, -1, 1, -1, 1, -1, 1, -1);
    const V s2 = _mm256_setr_ps(1, 1, -1, -1, 1, 1, -1, -1);
    const V s4 = _mm256_setr_ps(1, 1, 1, 1, -1, -1, -1, -1);
    v = _mm256_fmadd_ps(v, s1, _mm256_permute_ps(v, 0xB1));
    v = _mm256_fmadd_ps(v, s2, _mm256_permute_ps(v, 0x4E));
    return _mm256_fmadd_ps(v, s4, _mm256_permute2f128_ps(v, v, 0x01));
  }
};

}  // namespace

void hadamard_avx2(const HadamardPlan& p, float* x, int rows, size_t stride) {
  hadamard_rows<Avx2>(p, x, rows, stride);
}

}  // namespace rotor
