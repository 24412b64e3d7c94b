// The offline half of the rotations (METHODS.md §2): fold the RMSNorm weights into the next
// linears, then change the basis of the residual stream (R1, or PSOT's Q1/Q4), of each KV head's
// values (R2, or PSOT's Q2), and of the down_proj input (R4, whose online half the engine runs).
// Every function keeps the model's function exact in real arithmetic.
#pragma once
#include <cstdint>
#include <vector>

#include "quant/float_model.h"

namespace rotor {

// A square orthogonal matrix, row-major, in double (it is learned and composed offline).
struct Orthogonal {
  int n = 0;
  std::vector<double> q;  // [n, n]
  static Orthogonal identity(int n);
  // The randomized normalized Hadamard matrix D·H_n/√n of `spec` (size spec.n).
  static Orthogonal hadamard(const HadamardSpec& spec);
  // max |Q·Qᵀ − I|.
  double orthogonality_error() const;
};

// A block-diagonal orthogonal matrix of equal blocks (one block = a dense matrix).
struct BlockRotation {
  std::vector<Orthogonal> blocks;
  int dim() const;
  // In place: each row of x[rows, dim] ← row · this.
  void apply_rows(float* x, int rows) const;
};

// γ of every RMSNorm moves into the input columns of the linears it feeds; the norms become 1.
void fold_norms(FloatModel& fm);

// The residual stream's basis: attn[i] for layer i's attention input, mlp[i] for its MLP input
// (global rotations: all the same, no online work). Where attn[i] ≠ mlp[i] (psot-layer) the
// layers get the online residual blocks attn[i]ᵀ·mlp[i] and mlp[i]ᵀ·attn[i+1]. The classifier
// reads the last MLP basis. Requires folded norms.
void rotate_residual(FloatModel& fm, const std::vector<BlockRotation>& attn,
                     const std::vector<BlockRotation>& mlp);

// Per KV head g of layer `layer`: v_proj's output rows of head g and o_proj's input columns of
// every query head in g's group change basis by q2[g] (h×h).
void rotate_values(FloatModel& fm, int layer, const std::vector<Orthogonal>& q2);

// Throws rotor::Error, before any long work, when a rotation of this model's shapes cannot be
// built: a width that is not 2^k·m for a stored m, or a missing/invalid factor file in had_dir.
void check_rotatable(const ModelConfig& c, const std::string& had_dir);

// R4 (online on the down_proj input, its transpose folded into down_proj's columns) and, with
// qk, R3 (online, head-wise on Q and K after RoPE). had_dir holds the stored Hadamard factors.
void add_online_hadamards(FloatModel& fm, uint64_t seed, const std::string& had_dir, bool qk);

}  // namespace rotor
