// NEON KIVI K scores (kv_kernels.h). A channel block's two bytes per position widen to int16
// lanes, multiplied by q' of that channel pair with widening multiply-adds (smlal): each
// position's two channel products land in neighbouring int32 lanes, added pairwise at the end.
// Tiles of 32 positions keep their sums in registers, head by head.
#include <arm_neon.h>

#include <algorithm>

#include "engine/kernels/kivi_walk.h"

namespace rotor {

namespace {

// Sums over 8 positions: lanes (position, channel) of positions 0–1, 2–3, 4–5 and 6–7.
struct Sums8 {
  int32x4_t lanes[4];
};

// x0, x1: positions 0–3 and 4–7 as int16 channel pairs; q: the pair repeated.
inline void multiply_add(Sums8& s, int16x8_t x0, int16x8_t x1, int16x8_t q) {
  s.lanes[0] = vmlal_s16(s.lanes[0], vget_low_s16(x0), vget_low_s16(q));
  s.lanes[1] = vmlal_high_s16(s.lanes[1], x0, q);
  s.lanes[2] = vmlal_s16(s.lanes[2], vget_low_s16(x1), vget_low_s16(q));
  s.lanes[3] = vmlal_high_s16(s.lanes[3], x1, q);
}

inline int16x8_t pair(const int16_t* q) {
  return vreinterpretq_s16_s32(vdupq_n_s32(pair_bits(q[0], q[1])));
}

template <int Bits>
void group_scores(const int16_t* qs, float step, float constant, const uint8_t* codes, int hd,
                  int G, float* scores) {
  constexpr int kChannels = Bits == 8 ? 2 : 4;  // per block
  constexpr int kSteps = 4;                     // 8 positions each: 16 accumulators
  const int blocks = hd / kChannels;
  const size_t block_bytes = 2 * static_cast<size_t>(G);
  for (int p0 = 0; p0 < G; p0 += 8 * kSteps) {
    const int steps = std::min(kSteps, (G - p0) / 8);
    Sums8 acc[kSteps];
    for (auto& a : acc)
      for (auto& l : a.lanes) l = vdupq_n_s32(0);
    for (int b = 0; b < blocks; ++b) {
      const uint8_t* p = codes + b * block_bytes + 2 * p0;
      const int16x8_t q_lo = pair(qs + b * kChannels);
      const int16x8_t q_hi = Bits == 4 ? pair(qs + b * kChannels + 2) : q_lo;
      for (int s = 0; s < steps; ++s) {
        const uint8x16_t bytes = vld1q_u8(p + 16 * s);
        const uint16x8_t x0 = vmovl_u8(vget_low_u8(bytes)), x1 = vmovl_high_u8(bytes);
        if constexpr (Bits == 8) {
          multiply_add(acc[s], vreinterpretq_s16_u16(x0), vreinterpretq_s16_u16(x1), q_lo);
        } else {
          const uint16x8_t low = vdupq_n_u16(0x0F);
          multiply_add(acc[s], vreinterpretq_s16_u16(vandq_u16(x0, low)),
                       vreinterpretq_s16_u16(vandq_u16(x1, low)), q_lo);
          multiply_add(acc[s], vreinterpretq_s16_u16(vshrq_n_u16(x0, 4)),
                       vreinterpretq_s16_u16(vshrq_n_u16(x1, 4)), q_hi);
        }
      }
    }
    const float32x4_t base = vdupq_n_f32(constant);
    for (int s = 0; s < steps; ++s) {
      float* out = scores + p0 + 8 * s;
      const int32x4_t d0 = vpaddq_s32(acc[s].lanes[0], acc[s].lanes[1]);
      const int32x4_t d1 = vpaddq_s32(acc[s].lanes[2], acc[s].lanes[3]);
      vst1q_f32(out, vfmaq_n_f32(base, vcvtq_f32_s32(d0), step));
      vst1q_f32(out + 4, vfmaq_n_f32(base, vcvtq_f32_s32(d1), step));
    }
  }
}

void group_scores_neon(const KvView& kv, const int16_t* qs, const float* steps,
                       const float* constants, int n_q, const uint8_t* codes, float* scores,
                       size_t stride) {
  for (int h = 0; h < n_q; ++h, qs += kv.head_dim, scores += stride) {
    if (kv.bits == 8)
      group_scores<8>(qs, steps[h], constants[h], codes, kv.head_dim, kv.k_group, scores);
    else
      group_scores<4>(qs, steps[h], constants[h], codes, kv.head_dim, kv.k_group, scores);
  }
}

}  // namespace

void kivi_scores_neon(const KvView& kv, const float* q, int n_q, int n_pos, float* scores) {
  kivi_walk(kv, q, n_q, n_pos, scores, group_scores_neon, kNeonKernels.f16_to_f32);
}

}  // namespace rotor
