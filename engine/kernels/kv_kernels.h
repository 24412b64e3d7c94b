// Scores of a query against K stored per channel over groups of positions (KIVI; KvView with
// k_group > 0). For a complete group with per-channel scale s_c and minimum m_c,
//   q·k_p = Σ_c (q_c·s_c)·code_pc + Σ_c q_c·m_c,
// so each group costs one pass over q (q' = q·s and the constant) and then dots of q' with the
// codes, vectorized over the group's positions. q' is rounded to 16-bit integers (step
// max|q'| / 32767) so that the dots are integer pair dots (vpdpwssd, pmaddwd, smlal), exact
// and the same on every ISA: a 4-bit code then costs a fraction of a float conversion and
// multiply-add. The rounding moves a score by at most step/2 · Σ_c code_pc; its errors mostly
// cancel, to about 1e-3 of the largest |q'_c| (a 4-bit K step moves it by far more). The
// positions after the last complete group are in float, stored channel by channel too. Each
// ISA's attend calls its version here for the K side and keeps its own softmax and V code,
// shared with the per-token layout.
#pragma once
#include "engine/kernels/kernels.h"

namespace rotor {

// scores[h·n_pos + t] = q_h·k_t / sqrt(head_dim) for t < n_pos and the n_q heads q_h at
// q + h·head_dim.
void kivi_scores_scalar(const KvView& kv, const float* q, int n_q, int n_pos, float* scores);
void kivi_scores_avx2(const KvView& kv, const float* q, int n_q, int n_pos, float* scores);
void kivi_scores_avx512(const KvView& kv, const float* q, int n_q, int n_pos, float* scores);
void kivi_scores_neon(const KvView& kv, const float* q, int n_q, int n_pos, float* scores);

// The int16 pair (a, b) as one int32, a in the low half: a position's channel pair as its two
// code bytes widen in the lane, for broadcasting q' of the pair.
inline int32_t pair_bits(int16_t a, int16_t b) {
  return static_cast<int32_t>(static_cast<uint16_t>(a) |
                              static_cast<uint32_t>(static_cast<uint16_t>(b)) << 16);
}

}  // namespace rotor
