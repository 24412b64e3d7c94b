// The Hadamard pass with NEON (4 floats per vector): hadamard_simd.h over the ops below.
#include <arm_neon.h>

#include "engine/kernels/hadamard_simd.h"

namespace rotor {

namespace {

struct Neon {
  using V = float32x4_t;
  static constexpr int W = 4;
  // 16 accumulators (4 blocks × 16 columns) of the 32 registers.
  static constexpr int kBlocks = 4, kCols = 4;
  static V zero() { return vdupq_n_f32(0.0f); }
  static V set1(float v) { return vdupq_n_f32(v); }
  static V load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, V v) { vst1q_f32(p, v); }
  // Only rows shorter than 4 floats (m > 1 is a multiple of 4): through a small buffer.
  static V load_part(const float* p, int k) {
    float b[4] = {0, 0, 0, 0};
    std::copy(p, p + k, b);
    return vld1q_f32(b);
  }
  static void store_part(float* p, V v, int k) {
    float b[4];
    vst1q_f32(b, v);
    std::copy(b, b + k, p);
  }
  static V add(V a, V b) { return vaddq_f32(a, b); }
  static V sub(V a, V b) { return vsubq_f32(a, b); }
  static V mul(V a, V b) { return vmulq_f32(a, b); }
  static V fma(V a, V b, V c) { return vfmaq_f32(c, a, b); }
  static constexpr bool kSignBits = false;
  // Stage h: lane i takes partner + v (bit h of i clear) or partner − v (set); v·(±1) is exact,
  // so the fused multiply-add rounds exactly like the scalar add/sub.
  static V fwht(V v) {
    static const float s1[4] = {1, -1, 1, -1}, s2[4] = {1, 1, -1, -1};
    v = vfmaq_f32(vrev64q_f32(v), v, vld1q_f32(s1));
    return vfmaq_f32(vextq_f32(v, v, 2), v, vld1q_f32(s2));
  }
};

}  // namespace

void hadamard_neon(const HadamardPlan& p, float* x, int rows, size_t stride) {
  hadamard_rows<Neon>(p, x, rows, stride);
}

}  // namespace rotor
