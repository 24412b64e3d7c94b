// Scores of a query against K stored per channel over groups of positions (KIVI; KvView with
// k_group > 0). For a complete group with per-channel scale s_c and minimum m_c,
//   q·k_p = Σ_c (q_c·s_c)·code_pc + Σ_c q_c·m_c,
// so each group costs one pass over q (q' = q·s and the constant) and then plain dots of q'
// with the codes, vectorized over the group's positions; the positions after the last complete
// group are in float, stored channel by channel too. Each ISA's attend calls its version here for the K side and keeps its own
// softmax and V code, shared with the per-token layout.
#pragma once
#include "engine/kernels/kernels.h"

namespace rotor {

// scores[h·n_pos + t] = q_h·k_t / sqrt(head_dim) for t < n_pos and the n_q heads q_h at
// q + h·head_dim.
void kivi_scores_scalar(const KvView& kv, const float* q, int n_q, int n_pos, float* scores);
void kivi_scores_avx2(const KvView& kv, const float* q, int n_q, int n_pos, float* scores);
void kivi_scores_avx512(const KvView& kv, const float* q, int n_q, int n_pos, float* scores);
void kivi_scores_neon(const KvView& kv, const float* q, int n_q, int n_pos, float* scores);

// What the versions share: the walk over complete groups (q' and the constant of each head for
// each group, then group_scores for the group's k_group scores of every head, from codes = that
// group's codes: scores[h·stride + p] = constants[h] + Σ_c qs[h·head_dim + c]·code_pc) and the
// float part.
using KiviGroupScores = void (*)(const KvView& kv, const float* qs, const float* constants,
                                 int n_q, const uint8_t* codes, float* scores, size_t stride);
void kivi_scores(const KvView& kv, const float* q, int n_q, int n_pos, float* scores,
                 KiviGroupScores group_scores);

}  // namespace rotor
