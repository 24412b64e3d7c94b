#include "quant/weight_quantizer.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/error.h"
#include "engine/kernels/pack.h"

extern "C" {
// LAPACK (bundled with OpenBLAS): Cholesky factorization and inverse from it.
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dpotri_(const char* uplo, const int* n, double* a, const int* lda, int* info);
}

namespace rotor {

namespace {

// Scale and zero point of one group: w ≈ scale·(code − zero), codes in [−2^(b−1), 2^(b−1)−1].
struct GroupParams {
  float scale = 1.0f;
  int zero = 0;
};

int code_min(int bits) { return -(1 << (bits - 1)); }
int code_max(int bits) { return (1 << (bits - 1)) - 1; }

int quantize_value(float w, const GroupParams& p, int bits) {
  const int q = static_cast<int>(std::nearbyint(w / p.scale)) + p.zero;
  return std::clamp(q, code_min(bits), code_max(bits));
}

GroupParams params_for_range(float lo, float hi, const WeightQuantSpec& s) {
  GroupParams p;
  if (s.sym) {
    const float m = std::max(std::fabs(lo), std::fabs(hi));
    p.scale = m > 0 ? m / code_max(s.bits) : 1.0f;
    p.zero = 0;
  } else {
    lo = std::min(lo, 0.0f);
    hi = std::max(hi, 0.0f);
    const int levels = (1 << s.bits) - 1;
    p.scale = hi > lo ? (hi - lo) / levels : 1.0f;
    // The unsigned zero point round(−lo/scale) shifted into signed code units.
    p.zero = std::clamp(static_cast<int>(std::nearbyint(-lo / p.scale)), 0, levels) + code_min(s.bits);
  }
  return p;
}

// Clip search: shrink the range by 1.00, 0.99, … 0.20 and keep the factor with the smallest
// Σ|w − q(w)|^2.4 over the group (METHODS.md §1). `stride` steps through a column of W.
GroupParams search_params(const float* w, int n, size_t stride, const WeightQuantSpec& s) {
  float lo = 0.0f, hi = 0.0f;
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, w[i * stride]);
    hi = std::max(hi, w[i * stride]);
  }
  GroupParams best = params_for_range(lo, hi, s);
  double best_err = INFINITY;
  for (int step = 0; step <= 80; ++step) {
    const float c = 1.0f - 0.01f * step;
    const GroupParams p = params_for_range(lo * c, hi * c, s);
    double err = 0.0;
    for (int i = 0; i < n && err < best_err; ++i) {
      const float v = w[i * stride];
      err += std::pow(std::fabs(v - p.scale * (quantize_value(v, p, s.bits) - p.zero)), 2.4);
    }
    if (err < best_err) {
      best_err = err;
      best = p;
    }
  }
  return best;
}

int lcm(int a, int b) { return a / std::gcd(a, b) * b; }

// Holds codes for every (row, padded column) and params per (row, group), then packs.
struct Builder {
  QuantizedMatrix m;
  std::vector<int8_t> codes;

  Builder(int rows, int cols, const WeightQuantSpec& s) {
    m.rows = rows;
    m.cols = cols;
    m.bits = s.bits;
    plan_layout(cols, s, &m.cols_padded, &m.group, &m.block);
    codes.assign(static_cast<size_t>(rows) * m.cols_padded, 0);
    m.scales.assign(static_cast<size_t>(rows) * m.groups(), 1.0f);
    m.zeros.assign(m.scales.size(), 0);
  }
  void set_params(int r, int g, const GroupParams& p) {
    m.scales[static_cast<size_t>(r) * m.groups() + g] = p.scale;
    m.zeros[static_cast<size_t>(r) * m.groups() + g] = p.zero;
    // Padding columns of this group hold the zero point: they dequantize to exactly 0.
    for (int j = std::max(m.cols, g * m.group); j < (g + 1) * m.group; ++j)
      codes[static_cast<size_t>(r) * m.cols_padded + j] = static_cast<int8_t>(p.zero);
  }
  GroupParams params(int r, int j) const {
    const size_t i = static_cast<size_t>(r) * m.groups() + j / m.group;
    return {m.scales[i], m.zeros[i]};
  }
  QuantizedMatrix finish() {
    m.codes.resize(m.rows * packed_row_bytes(m.cols_padded, m.bits));
    pack_weight_codes(codes.data(), m.rows, m.cols_padded, m.bits, m.codes.data());
    m.sums.resize(static_cast<size_t>(m.rows) * m.blocks());
    weight_block_sums(codes.data(), m.rows, m.cols_padded, m.block, m.sums.data());
    return std::move(m);
  }
};

}  // namespace

void plan_layout(int cols, const WeightQuantSpec& s, int* cols_padded, int* group, int* block) {
  const int segment_unit = s.act_segment > 0 ? s.act_segment : 1;
  int unit = lcm(kChunk, segment_unit);
  if (s.group > 0) unit = lcm(unit, s.group);
  *cols_padded = (cols + unit - 1) / unit * unit;
  *group = s.group > 0 ? s.group : *cols_padded;
  const int segment = s.act_segment > 0 ? s.act_segment : *cols_padded;
  *block = std::gcd(*group, segment);
}

QuantizedMatrix quantize_rtn(const float* w, int rows, int cols, const WeightQuantSpec& s) {
  Builder b(rows, cols, s);
  const int G = b.m.group;
  for (int r = 0; r < rows; ++r) {
    const float* row = w + static_cast<size_t>(r) * cols;
    for (int g = 0; g < b.m.groups(); ++g) {
      const int begin = g * G, n = std::max(0, std::min(cols, begin + G) - begin);
      const GroupParams p = n > 0 ? search_params(row + begin, n, 1, s) : GroupParams{};
      b.set_params(r, g, p);
      for (int j = begin; j < begin + n; ++j)
        b.codes[static_cast<size_t>(r) * b.m.cols_padded + j] =
            static_cast<int8_t>(quantize_value(row[j], p, s.bits));
    }
  }
  return b.finish();
}

QuantizedMatrix quantize_gptq(const float* w_in, int rows, int cols,
                              const std::vector<double>& hessian, const WeightQuantSpec& s) {
  if (hessian.size() != static_cast<size_t>(cols) * cols)
    throw Error("GPTQ: Hessian size does not match the layer width");
  Builder b(rows, cols, s);
  const int G = b.m.group;
  const size_t C = cols;
  std::vector<float> W(w_in, w_in + static_cast<size_t>(rows) * cols);

  // Damped Hessian; a column never seen in calibration gets weight 0 and a unit diagonal.
  std::vector<double> H = hessian;
  double mean_diag = 0.0;
  for (size_t i = 0; i < C; ++i) mean_diag += H[i * C + i];
  mean_diag /= cols;
  for (size_t i = 0; i < C; ++i) {
    if (H[i * C + i] == 0.0) {
      H[i * C + i] = 1.0;
      for (int r = 0; r < rows; ++r) W[r * C + i] = 0.0f;
    }
    H[i * C + i] += 0.01 * (mean_diag > 0 ? mean_diag : 1.0);
  }
  // U = the upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU). H is symmetric, so row- and column-major
  // read it alike; LAPACK's column-major lower triangle is the row-major upper one.
  int n = cols, info = 0;
  dpotrf_("L", &n, H.data(), &n, &info);
  if (info != 0) throw Error("GPTQ: the calibration Hessian is not positive definite");
  dpotri_("L", &n, H.data(), &n, &info);
  if (info != 0) throw Error("GPTQ: the calibration Hessian could not be inverted");
  for (size_t i = 0; i < C; ++i)  // H⁻¹ is in the row-major upper triangle: mirror it
    for (size_t j = i + 1; j < C; ++j) H[j * C + i] = H[i * C + j];
  dpotrf_("L", &n, H.data(), &n, &info);  // column-major L = row-major Lᵀ = U
  if (info != 0) throw Error("GPTQ: the inverse Hessian is not positive definite");
  std::vector<double> U(C * C, 0.0);
  for (size_t i = 0; i < C; ++i)
    for (size_t j = i; j < C; ++j) U[i * C + j] = H[i * C + j];

  if (s.group == 0)  // per-channel parameters from the whole original row
    for (int r = 0; r < rows; ++r) b.set_params(r, 0, search_params(&W[r * C], cols, 1, s));

  constexpr int kBlock = 128;  // lazy batch: updates beyond the block are applied once per block
  std::vector<float> err(static_cast<size_t>(rows) * kBlock);
  for (int i1 = 0; i1 < cols; i1 += kBlock) {
    const int i2 = std::min(cols, i1 + kBlock);
    for (int i = i1; i < i2; ++i) {
      if (s.group > 0 && i % G == 0) {
        const int n_g = std::min(cols, i + G) - i;
        for (int r = 0; r < rows; ++r) {
          GroupParams p;
          // Columns of the group within the current W (already updated by earlier columns).
          p = search_params(&W[r * C + i], n_g, 1, s);
          b.set_params(r, i / G, p);
        }
      }
      const double d = U[i * C + i];
      for (int r = 0; r < rows; ++r) {
        const float wv = W[r * C + i];
        const GroupParams p = b.params(r, i);
        const int q = quantize_value(wv, p, s.bits);
        b.codes[r * static_cast<size_t>(b.m.cols_padded) + i] = static_cast<int8_t>(q);
        const float e = static_cast<float>((wv - p.scale * (q - p.zero)) / d);
        err[static_cast<size_t>(r) * kBlock + (i - i1)] = e;
        float* wr = &W[r * C];
        for (int j = i + 1; j < i2; ++j) wr[j] -= e * static_cast<float>(U[i * C + j]);
      }
    }
    // W[:, i2:] −= Err · U[i1:i2, i2:]
    for (int r = 0; r < rows; ++r) {
      float* wr = &W[r * C];
      const float* er = &err[static_cast<size_t>(r) * kBlock];
      for (int i = i1; i < i2; ++i) {
        const float e = er[i - i1];
        if (e == 0.0f) continue;
        const double* ui = &U[i * C];
        for (int j = i2; j < cols; ++j) wr[j] -= e * static_cast<float>(ui[j]);
      }
    }
  }
  return b.finish();
}

}  // namespace rotor
