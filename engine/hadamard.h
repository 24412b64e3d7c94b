// The online normalized (randomized) Hadamard transform of METHODS.md §2 (R3 head-wise on Q/K,
// R4 on the down_proj input). Groundwork: not yet wired into the forward pass.
//
// Definitions. n = 2^k · m with m ∈ {1, 12, 20, 28, 36, 40, 52, 60, 108, 140, 156, 172}.
//   H_{2^k}  Sylvester–Walsh matrix, H[a][c] = (-1)^popcount(a & c) (symmetric).
//   H_m      the m×m ±1 matrix handed to the constructor (H_m·H_mᵀ = m·I; H_1 = [1]).
//   H_n      = H_{2^k} ⊗ H_m, H_{2^k} the OUTER factor: with i = a·m + b, j = c·m + d,
//            H_n[i][j] = H_{2^k}[a][c] · H_m[b][d]. So element i belongs to block a (of m
//            contiguous floats) at position b inside the block.
//   D        diag(s_0..s_{n-1}), s_i ∈ {+1, -1}; all +1 when seed == 0.
//   Q        = D · H_n / √n, an orthogonal matrix (Q·Qᵀ = I).
// apply(x):         x ← x · Q = x · D · H_n / √n   (x a row vector: signs first, then H_n — not
//                   H_nᵀ; column j of the result is Σ_i x_i s_i H_n[i][j] / √n).
// apply_inverse(x): x ← x · Qᵀ = x · H_nᵀ · D / √n (H_nᵀ = H_{2^k} ⊗ H_mᵀ), undoing apply up to
//                   float rounding.
// Cost per vector: n·k additions/subtractions for the butterfly (over 2^k blocks of m floats)
// plus n·m multiply-adds for the dense ±1 product of each m-block, plus n multiplies for D/√n.
// The work runs in the kernel table's hadamard entry (engine/kernels/hadamard_*.cpp, chosen
// per CPU like the other kernels); callers may rely on the ISAs agreeing up to float rounding
// (today they agree bit for bit: the dense products only multiply by ±1).
//
// Fused output scale: apply(x, post_scale) and apply_rows(.., post_scale) also multiply element
// j of the result by post_scale[j] (n floats) in the same pass, e.g. BDQ's 1/s before the
// activation quantization (METHODS.md §4: rotation → × 1/s → quantize).
//
// Signs (seed != 0): splitmix64 with state = seed; for i = 0..n-1 the state advances by
// 0x9E3779B97F4A7C15, z = the standard splitmix64 finalizer of the state, and s_i = -1 when the
// top bit of z is set, +1 otherwise. Deterministic across platforms.
//
// Head-wise use (R3): construct with n = head size and call apply_rows(q, n_heads, head_size)
// (rows = heads, stride = head size); each head gets the same Q independently.
//
// apply/apply_inverse/apply_rows are const and use only stack scratch: safe to call from several
// threads at once on different vectors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/kernels/kernels.h"

namespace rotor {

class HadamardTransform {
 public:
  // n = pow2 · m.
  struct Factorization {
    size_t pow2 = 1;  // 2^k
    int log2 = 0;     // k
    int m = 1;
  };
  // The allowed non-power-of-two factors m (besides 1), ascending.
  static const std::vector<int>& allowed_m();
  // The largest 2^k with n / 2^k ∈ {1} ∪ allowed_m() (so the smallest, cheapest m). Throws
  // rotor::Error naming n when no such split exists (e.g. 7, 100) or n == 0.
  static Factorization factorize(size_t n);
  // Throws rotor::Error unless h holds m·m entries, each +1 or -1, with H·Hᵀ = m·I.
  static void validate_matrix(const std::vector<int8_t>& h, int m);

  // h_m: the m×m ±1 matrix row-major (empty when m == 1), m = factorize(n).m. seed: see above.
  // Throws rotor::Error on a bad n or a bad matrix.
  HadamardTransform(size_t n, const std::vector<int8_t>& h_m, uint64_t seed = 0);

  size_t size() const { return n_; }
  const Factorization& factorization() const { return f_; }
  // The diagonal D as ±1 (all +1 when seed == 0).
  const std::vector<float>& signs() const { return signs_; }

  // x[0..n) ← x · D · H_n / √n, then ⊙ post_scale when not null.
  void apply(float* x, const float* post_scale = nullptr) const;
  // x[0..n) ← x · H_nᵀ · D / √n.
  void apply_inverse(float* x) const;
  // apply() to rows vectors x + r·stride (stride in floats, ≥ n), r = 0..rows-1, in one kernel
  // call (so many small heads cost no more than one call).
  void apply_rows(float* x, int rows, size_t stride, const float* post_scale = nullptr) const;
  void apply_inverse_rows(float* x, int rows, size_t stride) const;
  // The kernel-level description of apply(x, post_scale) (inverse = false) or apply_inverse
  // (inverse = true; post_scale must be null), valid while this object lives: for running one
  // ISA's kernel (kernels_for(isa).hadamard) directly.
  HadamardPlan plan(bool inverse, const float* post_scale = nullptr) const;

 private:
  size_t n_;
  Factorization f_;
  std::vector<float> signs_;   // s_i
  std::vector<float> scaled_;  // s_i / √n
  int m_pad_ = 0;              // rows of hm_/hmt_: m rounded up to kHadamardPad, zero-padded
  std::vector<float> hm_;      // H_m as floats (empty when m == 1)
  std::vector<float> hmt_;     // H_mᵀ as floats
  std::vector<uint16_t> hm_signs_, hmt_signs_;  // the same as sign bits (HadamardPlan::h_signs)
};

}  // namespace rotor
