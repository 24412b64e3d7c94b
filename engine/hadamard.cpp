#include "engine/hadamard.h"

#include <cmath>
#include <string>

#include "engine/error.h"

namespace rotor {

namespace {

uint64_t splitmix64_next(uint64_t& state) {
  state += 0x9E3779B97F4A7C15ull;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

const std::vector<int>& HadamardTransform::allowed_m() {
  static const std::vector<int> kAllowed = {12, 20, 28, 36, 40, 52, 60, 108, 140, 156, 172};
  return kAllowed;
}

HadamardTransform::Factorization HadamardTransform::factorize(size_t n) {
  if (n == 0) throw Error("Hadamard size 0 is not allowed");
  int tz = 0;
  while (((n >> tz) & 1) == 0) ++tz;
  for (int k = tz; k >= 0; --k) {
    const size_t m = n >> k;
    bool ok = m == 1;
    for (int a : allowed_m()) ok = ok || m == static_cast<size_t>(a);
    if (ok) {
      Factorization f;
      f.pow2 = size_t{1} << k;
      f.log2 = k;
      f.m = static_cast<int>(m);
      return f;
    }
  }
  std::string list = "1";
  for (int a : allowed_m()) list += ", " + std::to_string(a);
  throw Error("Hadamard size " + std::to_string(n) + " = 2^" + std::to_string(tz) + " * " +
              std::to_string(n >> tz) + " cannot be written as 2^k * m with m in {" + list +
              "} (no stored Hadamard matrix of order m fits)");
}

void HadamardTransform::validate_matrix(const std::vector<int8_t>& h, int m) {
  if (m < 1) throw Error("Hadamard matrix order " + std::to_string(m) + " is not positive");
  const size_t mm = static_cast<size_t>(m) * m;
  if (m == 1) {
    if (!h.empty() && !(h.size() == 1 && h[0] == 1))
      throw Error("Hadamard matrix of order 1 must be empty or [+1]");
    return;
  }
  if (h.size() != mm)
    throw Error("Hadamard matrix of order " + std::to_string(m) + " has " +
                std::to_string(h.size()) + " entries, expected " + std::to_string(mm));
  for (size_t i = 0; i < mm; ++i)
    if (h[i] != 1 && h[i] != -1)
      throw Error("Hadamard matrix of order " + std::to_string(m) + ": entry (" +
                  std::to_string(i / m) + ", " + std::to_string(i % m) + ") is " +
                  std::to_string(static_cast<int>(h[i])) + ", not +1 or -1");
  for (int r = 0; r < m; ++r)
    for (int c = r; c < m; ++c) {
      const int8_t* a = h.data() + static_cast<size_t>(r) * m;
      const int8_t* b = h.data() + static_cast<size_t>(c) * m;
      int dot = 0;
      for (int t = 0; t < m; ++t) dot += a[t] * b[t];
      if (dot != (r == c ? m : 0))
        throw Error("Hadamard matrix of order " + std::to_string(m) + " is not orthogonal: rows " +
                    std::to_string(r) + " and " + std::to_string(c) + " have dot product " +
                    std::to_string(dot) + " (H*H^T must be " + std::to_string(m) + "*I)");
    }
}

HadamardTransform::HadamardTransform(size_t n, const std::vector<int8_t>& h_m, uint64_t seed)
    : n_(n), f_(factorize(n)) {
  const int m = f_.m;
  validate_matrix(h_m, m);
  if (m > 1) {
    m_pad_ = (m + kHadamardPad - 1) / kHadamardPad * kHadamardPad;
    hm_.assign(static_cast<size_t>(m) * m_pad_, 0.0f);
    hmt_.assign(hm_.size(), 0.0f);
    // The sign bits only where the floats outgrow L1 (more than 32 KB: m ≥ 108). Below, the
    // floats stay in L1 and read faster than the bits turn into vectors.
    const bool bits = hm_.size() * sizeof(float) > 32 * 1024;
    const size_t words = m_pad_ / 16;  // sign words per row
    hm_signs_.assign(bits ? m * words : 0, 0);
    hmt_signs_.assign(hm_signs_.size(), 0);
    for (int r = 0; r < m; ++r)
      for (int c = 0; c < m; ++c) {
        const float v = h_m[static_cast<size_t>(r) * m + c];
        hm_[static_cast<size_t>(r) * m_pad_ + c] = v;
        hmt_[static_cast<size_t>(c) * m_pad_ + r] = v;
        if (bits && v < 0) {
          hm_signs_[r * words + c / 16] |= static_cast<uint16_t>(1u << (c % 16));
          hmt_signs_[c * words + r / 16] |= static_cast<uint16_t>(1u << (r % 16));
        }
      }
  }
  signs_.assign(n, 1.0f);
  if (seed != 0) {
    uint64_t state = seed;
    for (size_t i = 0; i < n; ++i) signs_[i] = (splitmix64_next(state) >> 63) ? -1.0f : 1.0f;
  }
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
  scaled_.resize(n);
  for (size_t i = 0; i < n; ++i) scaled_[i] = signs_[i] * scale;
}

HadamardPlan HadamardTransform::plan(bool inverse, const float* post_scale) const {
  if (inverse && post_scale)
    throw Error("Hadamard plan: the inverse takes no output scale", kExitInternal);
  HadamardPlan p;
  p.n = n_;
  p.log2 = f_.log2;
  p.m = f_.m;
  p.m_pad = m_pad_;
  // Inverse, x · H_nᵀ · D/√n: H_m turns into H_mᵀ and D/√n moves after the product.
  p.h = f_.m == 1 ? nullptr : inverse ? hmt_.data() : hm_.data();
  p.h_signs = hm_signs_.empty() ? nullptr : inverse ? hmt_signs_.data() : hm_signs_.data();
  p.pre = inverse ? nullptr : scaled_.data();
  p.post = inverse ? scaled_.data() : post_scale;
  return p;
}

void HadamardTransform::apply(float* x, const float* post_scale) const {
  kernels().hadamard(plan(false, post_scale), x, 1, n_);
}

void HadamardTransform::apply_inverse(float* x) const {
  kernels().hadamard(plan(true), x, 1, n_);
}

void HadamardTransform::apply_rows(float* x, int rows, size_t stride,
                                   const float* post_scale) const {
  if (rows > 1 && stride < n_)
    throw Error("Hadamard apply_rows: stride " + std::to_string(stride) + " < size " +
                    std::to_string(n_),
                kExitInternal);
  kernels().hadamard(plan(false, post_scale), x, rows, stride);
}

void HadamardTransform::apply_inverse_rows(float* x, int rows, size_t stride) const {
  if (rows > 1 && stride < n_)
    throw Error("Hadamard apply_inverse_rows: stride " + std::to_string(stride) + " < size " +
                    std::to_string(n_),
                kExitInternal);
  kernels().hadamard(plan(true), x, rows, stride);
}

}  // namespace rotor
