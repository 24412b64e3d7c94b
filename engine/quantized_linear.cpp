#include "engine/quantized_linear.h"

#include <cblas.h>

#include <algorithm>

namespace rotor {

namespace {
// Rows and tokens per tile: the integer dots of a tile stay in a small buffer.
constexpr int kTileRows = 64;
constexpr int kTileTokens = 16;
}  // namespace

QuantizedLinear::QuantizedLinear(const PackedMatrix& w, const ActQuantParams& act)
    : Linear(w.cols, w.rows), w_(w), act_(act) {
  if (act_.segment == 0) act_.segment = w.cols_padded;
  act_.block = w.block;
}

size_t QuantizedLinear::weight_bytes() const {
  const size_t rows = w_.rows;
  return rows * w_.row_bytes() + rows * w_.groups() * (sizeof(float) + sizeof(int32_t)) +
         rows * w_.blocks() * sizeof(int32_t);
}

std::string QuantizedLinear::type_name() const {
  return "w" + std::to_string(w_.bits) + "a" + std::to_string(act_.bits);
}

void QuantizedLinear::forward(const float* x, int rows, float* y) const {
  if (act_.bits >= 16)
    forward_float(x, rows, y);
  else
    forward_integer(x, rows, y);
}

void QuantizedLinear::forward_integer(const float* x, int rows, float* y) const {
  const KernelTable& k = kernels();
  QuantizedActs& a = acts_;
  a.tokens = rows;
  a.cols_padded = w_.cols_padded;
  a.segment = act_.segment;
  a.block = w_.block;
  a.q.resize(static_cast<size_t>(rows) * w_.cols_padded);
  a.scale.resize(static_cast<size_t>(rows) * (w_.cols_padded / act_.segment));
  a.zero.resize(a.scale.size());
  a.sums.resize(static_cast<size_t>(rows) * w_.blocks());
  k.quantize_acts(x, w_.cols, rows, act_, a);

  dots_.resize(static_cast<size_t>(kTileTokens) * kTileRows * w_.blocks());
  for (int t0 = 0; t0 < rows; t0 += kTileTokens) {
    const int nt = std::min(kTileTokens, rows - t0);
    for (int r0 = 0; r0 < w_.rows; r0 += kTileRows) {
      const int r1 = std::min(w_.rows, r0 + kTileRows);
      k.block_dots(w_, &a.q[static_cast<size_t>(t0) * w_.cols_padded], w_.cols_padded, nt, r0,
                   r1, dots_.data());
      linear_epilogue(w_, a, t0, nt, r0, r1, dots_.data(), y + static_cast<size_t>(t0) * w_.rows,
                      w_.rows);
    }
  }
}

void QuantizedLinear::forward_float(const float* x, int rows, float* y) const {
  const int n = w_.cols;
  tile_.resize(static_cast<size_t>(kTileRows) * n);
  for (int r0 = 0; r0 < w_.rows; r0 += kTileRows) {
    const int r1 = std::min(w_.rows, r0 + kTileRows);
    dequantize_rows(w_, r0, r1, tile_.data());
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, r1 - r0, n, 1.0f, x, n,
                tile_.data(), n, 0.0f, y + r0, w_.rows);
  }
}

}  // namespace rotor
