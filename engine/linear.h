// The one interface every linear layer of the forward pass goes through. The forward pass
// never knows how weights are stored (fp32 today; packed integers in later formats).
#pragma once
#include <cstddef>
#include <string>

namespace rotor {

class Linear {
 public:
  Linear(int in_features, int out_features) : in_(in_features), out_(out_features) {}
  virtual ~Linear() = default;
  Linear(const Linear&) = delete;
  Linear& operator=(const Linear&) = delete;

  int in_features() const { return in_; }
  int out_features() const { return out_; }

  // y[rows, out] = x[rows, in] · Wᵀ. rows == 1 is the decode path, rows > 1 prefill.
  virtual void forward(const float* x, int rows, float* y) const = 0;
  // Bytes of weight data read by one forward of one row.
  virtual size_t weight_bytes() const = 0;
  // Storage type, for `rotor info`.
  virtual std::string type_name() const = 0;
  // The weights as floats [out, in]: what the quantizer starts from, whatever the storage.
  virtual void to_float(float* out) const = 0;

 private:
  int in_, out_;
};

// ys[i][rows, out_i] = x · W_iᵀ for count ≥ 1 linears that all read x (q/k/v, gate/up):
// the floats of linears[i]->forward(x, rows, ys[i]), bit for bit. Integer layers that quantize
// x alike quantize it once and run as one thread-pool job; any other mix runs forward() on
// each. Defined in quantized_linear.cpp, the only storage with work to share.
void forward_shared(const Linear* const* linears, int count, const float* x, int rows,
                    float* const* ys);

// Full-precision weights [out, in] (row-major), borrowed from storage the model owns.
// Decode uses sgemv and prefill sgemm from OpenBLAS, on row chunks split over the thread pool.
class LinearF32 final : public Linear {
 public:
  LinearF32(const float* weights, int out_features, int in_features)
      : Linear(in_features, out_features), w_(weights) {}
  void forward(const float* x, int rows, float* y) const override;
  size_t weight_bytes() const override;
  std::string type_name() const override { return "f32"; }
  void to_float(float* out) const override;

 private:
  const float* w_;
};

}  // namespace rotor
