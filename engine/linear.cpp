#include "engine/linear.h"

#include <cblas.h>

#include <algorithm>

namespace rotor {

void LinearF32::forward(const float* x, int rows, float* y) const {
  const int n = in_features(), m = out_features();
  if (rows == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, m, n, 1.0f, w_, n, x, 1, 0.0f, y, 1);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, m, n, 1.0f, x, n, w_, n, 0.0f, y,
                m);
  }
}

size_t LinearF32::weight_bytes() const {
  return sizeof(float) * static_cast<size_t>(in_features()) * out_features();
}

}  // namespace rotor

namespace rotor {

void LinearF32::to_float(float* out) const {
  std::copy_n(w_, static_cast<size_t>(in_features()) * out_features(), out);
}

}  // namespace rotor
