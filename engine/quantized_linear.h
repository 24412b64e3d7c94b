// A linear layer with packed integer weights (used in place from the model file).
// With 4- or 8-bit activations it runs the integer kernels: quantize the input rows once,
// integer block dots per tile, the shared float epilogue. With 16-bit (float) activations it
// dequantizes weight tiles and multiplies in float. Both split their tiles over the shared
// thread pool (engine/threads.h); every split gives the same floats as one thread.
#pragma once
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/linear.h"

namespace rotor {

class QuantizedLinear final : public Linear {
 public:
  // act.bits ∈ {4, 8} for integer activations, 16 for float activations.
  QuantizedLinear(const PackedMatrix& w, const ActQuantParams& act);
  void forward(const float* x, int rows, float* y) const override;
  size_t weight_bytes() const override;
  std::string type_name() const override;
  void to_float(float* out) const override { dequantize_rows(w_, 0, w_.rows, out); }
  const PackedMatrix& packed() const { return w_; }
  const ActQuantParams& activation() const { return act_; }

 private:
  void forward_integer(const float* x, int rows, float* y) const;
  // Tokens [t0, t1) × rows [r0, r1) of forward_integer, on the calling thread.
  void integer_tiles(int t0, int t1, int r0, int r1, float* y) const;
  void forward_float(const float* x, int rows, float* y) const;

  PackedMatrix w_;
  ActQuantParams act_;
  // The quantized input, reused across calls (a Session runs its layers one at a time).
  mutable QuantizedActs acts_;
};

}  // namespace rotor
