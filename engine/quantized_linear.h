// A linear layer with packed integer weights (used in place from the model file).
// With 4- or 8-bit activations it runs the integer kernels: quantize the input rows once,
// integer block dots per tile, the shared float epilogue. With 16-bit (float) activations it
// dequantizes weight tiles and multiplies in float. Both split their tiles over the shared
// thread pool (engine/threads.h); every split gives the same floats as one thread.
// forward_shared (engine/linear.h) runs layers that read one input (q/k/v, gate/up) as one:
// the input quantized once, the tiles of all of them in one pool job.
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
  friend void forward_shared(const Linear* const* linears, int count, const float* x, int rows,
                             float* const* ys);
  bool integer() const { return act_.bits < 16; }
  // True when both are integer and quantize an input into the same QuantizedActs.
  bool same_acts(const QuantizedLinear& other) const;
  // Whether a forward of `rows` tokens goes through KernelTable::centered_dots (decode of
  // 4-bit weights and activations in several blocks of whole chunks, where the kernels have it).
  bool centered_decode(int rows) const;
  // x quantized as this layer's input, in acts_.
  const QuantizedActs& quantize(const float* x, int rows) const;
  // ys[i] = the integer product of a with ls[i] (QuantizedLinears whose input a quantized),
  // all in one pool job.
  static void integer_job(const Linear* const* ls, int count, const QuantizedActs& a, int rows,
                          float* const* ys);
  // Tokens [t0, t1) × rows [r0, r1) of the integer product, on the calling thread,
  // rows_per_tile rows per kernel call.
  void integer_tiles(const QuantizedActs& a, int t0, int t1, int r0, int r1, int rows_per_tile,
                     float* y) const;
  void forward_float(const float* x, int rows, float* y) const;

  PackedMatrix w_;
  ActQuantParams act_;
  // The quantized input, reused across calls (a Session runs its layers one at a time).
  mutable QuantizedActs acts_;
};

}  // namespace rotor
