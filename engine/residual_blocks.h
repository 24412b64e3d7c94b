// psot-layer's online basis changes of the residual stream (METHODS.md §3): block-diagonal
// matrices applied to the residual stream twice per layer.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rotor {

// blockdiag(M_0 .. M_{b−1}): b dense n×n blocks [b, n, n] row-major (b = OnlineRotations::
// resid_blocks), in f32 or, as quantized files keep them, in f16: decode reads every block for
// every token, and f16 halves that.
struct ResidualBlocks {
  const float* f32 = nullptr;
  const uint16_t* f16 = nullptr;
  explicit operator bool() const { return f32 != nullptr || f16 != nullptr; }
  size_t element_bytes() const { return f16 ? 2 : 4; }
};

// In place: each row of x[rows, dim] ← row · blockdiag(M_0 .. M_{n_blocks−1}). scratch holds
// rows·dim floats.
void blockdiag_matmul(float* x, int rows, int dim, const ResidualBlocks& m, int n_blocks,
                      float* scratch);

}  // namespace rotor
