// The element-wise and row-wise steps of the LLaMA block, in fp32.
#pragma once
#include <vector>

namespace rotor {

// out = x / sqrt(mean(x²) + eps) · weight, for one row of n values.
void rmsnorm(const float* x, const float* weight, int n, float eps, float* out);
// In place: x = softmax(x) over n values, terms below exp(kSoftmaxCutoff) of the largest set to 0
// (engine/kernels/kernels.h says why).
void softmax(float* x, int n);
// In place: gate = silu(gate) · up, over n values (SwiGLU), by the selected kernel table.
void swiglu(float* gate, const float* up, int n);

// Rotary position embedding on interleaved pairs (x[2j], x[2j+1]) of each head.
class Rope {
 public:
  Rope(int head_dim, int max_positions, float theta);
  // Rotates every head of one row (n_heads · head_dim values) for position pos.
  void apply(float* row, int n_heads, int pos) const;
  // Undoes apply() (the transposed rotation): what a backward pass through RoPE needs.
  void apply_inverse(float* row, int n_heads, int pos) const;

 private:
  // Rotates each pair by +angle (sign 1) or −angle (sign −1).
  void rotate(float* row, int n_heads, int pos, float sign) const;
  int half_;
  std::vector<float> cos_, sin_;  // [max_positions, head_dim / 2]
};

}  // namespace rotor
