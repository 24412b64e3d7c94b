// NEON KIVI K scores (kv_kernels.h). A tile of positions keeps its scores in registers while
// q' is broadcast channel by channel; codes are widened to float 4 lanes at a time.
#include <arm_neon.h>

#include <algorithm>

#include "engine/kernels/kv_kernels.h"

namespace rotor {

namespace {

inline float32x4_t widen_lo(uint16x8_t v) { return vcvtq_f32_u32(vmovl_u16(vget_low_u16(v))); }
inline float32x4_t widen_hi(uint16x8_t v) { return vcvtq_f32_u32(vmovl_high_u16(v)); }

// One step is 8 bytes of a channel's codes: 8 positions at 8 bits; at 4 bits 8 positions from
// the low nibbles and the 8 positions half a group later from the high nibbles.
template <int Bits>
void group_scores(const float* qs, float constant, const uint8_t* codes, int hd, int G,
                  float* scores) {
  constexpr int kVecs = Bits == 8 ? 2 : 4;  // 4-lane vectors per step
  constexpr int kSteps = 16 / kVecs;        // steps per tile: 16 accumulators
  const int channel_bytes = G * Bits / 8, half = G / 2;
  for (int b0 = 0; b0 < channel_bytes; b0 += 8 * kSteps) {
    const int steps = std::min(kSteps, (channel_bytes - b0) / 8);
    float32x4_t acc[kSteps * kVecs];
    for (auto& a : acc) a = vdupq_n_f32(constant);
    for (int c = 0; c < hd; ++c) {
      const float w = qs[c];
      const uint8_t* b = codes + static_cast<size_t>(c) * channel_bytes + b0;
      for (int s = 0; s < steps; ++s) {
        const uint8x8_t bytes = vld1_u8(b + 8 * s);
        float32x4_t* a = acc + kVecs * s;
        if constexpr (Bits == 8) {
          const uint16x8_t c0 = vmovl_u8(bytes);
          a[0] = vfmaq_n_f32(a[0], widen_lo(c0), w);
          a[1] = vfmaq_n_f32(a[1], widen_hi(c0), w);
        } else {
          const uint16x8_t lo = vmovl_u8(vand_u8(bytes, vdup_n_u8(0x0F)));
          const uint16x8_t hi = vmovl_u8(vshr_n_u8(bytes, 4));
          a[0] = vfmaq_n_f32(a[0], widen_lo(lo), w);
          a[1] = vfmaq_n_f32(a[1], widen_hi(lo), w);
          a[2] = vfmaq_n_f32(a[2], widen_lo(hi), w);
          a[3] = vfmaq_n_f32(a[3], widen_hi(hi), w);
        }
      }
    }
    for (int s = 0; s < steps; ++s) {
      const int p = b0 + 8 * s;  // the step's first position (low nibbles at 4 bits)
      const float32x4_t* a = acc + kVecs * s;
      vst1q_f32(scores + p, a[0]);
      vst1q_f32(scores + p + 4, a[1]);
      if constexpr (Bits == 4) {
        vst1q_f32(scores + half + p, a[2]);
        vst1q_f32(scores + half + p + 4, a[3]);
      }
    }
  }
}

// Head by head: NEON's sixteen accumulators already fill its registers for one head.
void group_scores_neon(const KvView& kv, const float* qs, const float* constants, int n_q,
                       const uint8_t* codes, float* scores, size_t stride) {
  for (int h = 0; h < n_q; ++h, qs += kv.head_dim, scores += stride) {
    if (kv.bits == 8)
      group_scores<8>(qs, constants[h], codes, kv.head_dim, kv.k_group, scores);
    else
      group_scores<4>(qs, constants[h], codes, kv.head_dim, kv.k_group, scores);
  }
}

}  // namespace

void kivi_scores_neon(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
  kivi_scores(kv, q, n_q, n_pos, scores, group_scores_neon);
}

}  // namespace rotor
