// The K side of attention: scores of queries against the K cache in its two layouts, with the
// queries in 16-bit integers so that the dots with the codes are integer pair dots (vpdpwssd,
// pmaddwd, smlal), exact and the same on every ISA: a 4-bit code then costs a fraction of a
// float conversion and multiply-add. Each ISA's attend calls its version here and keeps its own
// softmax and V code.
//
// K per position (KvView with k_group = 0): position t has scale s_t and minimum m_t, so with
// qn = q / sqrt(head_dim),
//   qn·k_t = s_t·Σ_c qn_c·code_tc + m_t·Σ_c qn_c.
// qn is rounded once per call to qi = round(qn / step), step = max|qn| / 32767 (q16.h), and
//   score_t = s_t·(step·Σ_c qi_c·code_tc) + m_t·Σ_c qn_c.
//
// K per channel over groups of positions (KIVI; k_group > 0): for a complete group with
// per-channel scale s_c and minimum m_c,
//   qn·k_p = Σ_c (qn_c·s_c)·code_pc + Σ_c qn_c·m_c,
// so each group costs one pass over q (q' = qn·s rounded the same way, and the constant) and
// then dots of q' with the codes, vectorized over the group's positions. The positions after
// the last complete group are in float, stored channel by channel too.
//
// The rounding moves a score by at most step/2 · Σ_c code_c (times s_t per position); its
// errors mostly cancel, to about 1e-3 of the largest |q'_c| (a 4-bit K step moves it by far
// more). q'·code sums of up to 256 channels fit in int32 (KvCache checks the head size).
#pragma once
#include "engine/kernels/kernels.h"

namespace rotor {

// scores[h·n_pos + t] = q_h·k_t / sqrt(head_dim) for t < n_pos and the n_q heads q_h at
// q + h·head_dim: K per position (token_scores) or over groups (kivi_scores).
void token_scores_scalar(const KvView& kv, const float* q, int n_q, int n_pos, float* scores);
void token_scores_avx2(const KvView& kv, const float* q, int n_q, int n_pos, float* scores);
void token_scores_avx512(const KvView& kv, const float* q, int n_q, int n_pos, float* scores);
void token_scores_neon(const KvView& kv, const float* q, int n_q, int n_pos, float* scores);
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
