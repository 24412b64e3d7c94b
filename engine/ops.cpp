#include "engine/ops.h"

#include <cmath>

#include "engine/kernels/kernels.h"

namespace rotor {

void rmsnorm(const float* x, const float* weight, int n, float eps, float* out) {
  // Four partial sums: one chain of dependent double adds cost more than the rest of the norm.
  double part[4] = {};
  int i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) part[j] += static_cast<double>(x[i + j]) * x[i + j];
  for (; i < n; ++i) part[0] += static_cast<double>(x[i]) * x[i];
  const double ss = (part[0] + part[1]) + (part[2] + part[3]);
  const float inv = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
  for (i = 0; i < n; ++i) out[i] = x[i] * inv * weight[i];
}

void softmax(float* x, int n) {
  float max = x[0];
  for (int i = 1; i < n; ++i) max = x[i] > max ? x[i] : max;
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) {
    x[i] = x[i] - max < kSoftmaxCutoff ? 0.0f : std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(float* gate, const float* up, int n) { kernels().swiglu(gate, up, n); }

Rope::Rope(int head_dim, int max_positions, float theta)
    : half_(head_dim / 2),
      cos_(static_cast<size_t>(max_positions) * half_),
      sin_(static_cast<size_t>(max_positions) * half_) {
  // Angles in double: at long contexts pos·freq loses digits in float.
  for (int p = 0; p < max_positions; ++p)
    for (int j = 0; j < half_; ++j) {
      const double freq = std::pow(static_cast<double>(theta), -2.0 * j / head_dim);
      const double angle = p * freq;
      cos_[static_cast<size_t>(p) * half_ + j] = static_cast<float>(std::cos(angle));
      sin_[static_cast<size_t>(p) * half_ + j] = static_cast<float>(std::sin(angle));
    }
}

void Rope::rotate(float* row, int n_heads, int pos, float sign) const {
  const float* c = &cos_[static_cast<size_t>(pos) * half_];
  const float* s = &sin_[static_cast<size_t>(pos) * half_];
  for (int h = 0; h < n_heads; ++h) {
    float* v = row + static_cast<size_t>(h) * 2 * half_;
    for (int j = 0; j < half_; ++j) {
      const float a = v[2 * j], b = v[2 * j + 1], sj = sign * s[j];
      v[2 * j] = a * c[j] - b * sj;
      v[2 * j + 1] = a * sj + b * c[j];
    }
  }
}

void Rope::apply(float* row, int n_heads, int pos) const { rotate(row, n_heads, pos, 1.0f); }

void Rope::apply_inverse(float* row, int n_heads, int pos) const { rotate(row, n_heads, pos, -1.0f); }

}  // namespace rotor
