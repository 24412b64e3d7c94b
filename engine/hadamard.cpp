#include "engine/hadamard.h"

#include <cmath>
#include <string>

#include "engine/error.h"

namespace rotor {

namespace {

constexpr int kMaxM = 172;

uint64_t splitmix64_next(uint64_t& state) {
  state += 0x9E3779B97F4A7C15ull;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The loops below work on fixed-width chunks (W floats in a local array, constant trip counts)
// so that GCC's -O2 "very cheap" vectorizer/SLP turns each chunk into SIMD operations without
// any ISA-specific code; a scalar tail covers widths that are not a multiple of the chunk.

// acc[0..W) = Σ_b xb[b] · h[b][d0 .. d0+W), written to out[d0 .. d0+W).
template <int W>
inline void dense_chunk(const float* __restrict xb, const float* __restrict h, int m, int d0,
                        float* __restrict out) {
  float acc[W];
  for (int l = 0; l < W; ++l) acc[l] = 0.0f;
  for (int b = 0; b < m; ++b) {
    const float v = xb[b];
    const float* __restrict row = h + static_cast<size_t>(b) * m + d0;
    for (int l = 0; l < W; ++l) acc[l] += v * row[l];
  }
  for (int l = 0; l < W; ++l) out[d0 + l] = acc[l];
}

// a, b ← a + b, a − b over [0, len).
inline void butterfly_span(float* __restrict a, float* __restrict b, size_t len) {
  constexpr size_t W = 8;
  size_t t = 0;
  for (; t + W <= len; t += W) {
    float u[W], v[W];
    for (size_t l = 0; l < W; ++l) {
      u[l] = a[t + l];
      v[l] = b[t + l];
    }
    for (size_t l = 0; l < W; ++l) {
      a[t + l] = u[l] + v[l];
      b[t + l] = u[l] - v[l];
    }
  }
  for (; t < len; ++t) {
    const float u = a[t], v = b[t];
    a[t] = u + v;
    b[t] = u - v;
  }
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
  throw Error("Hadamard size " + std::to_string(n) + " cannot be written as 2^k * m with m in {" +
              list + "}");
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
    : n_(n), f_(factorize(n)), scale_(static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)))) {
  const int m = f_.m;
  validate_matrix(h_m, m);
  if (m > 1) {
    hm_.resize(static_cast<size_t>(m) * m);
    hmt_.resize(hm_.size());
    for (int r = 0; r < m; ++r)
      for (int c = 0; c < m; ++c) {
        const float v = h_m[static_cast<size_t>(r) * m + c];
        hm_[static_cast<size_t>(r) * m + c] = v;
        hmt_[static_cast<size_t>(c) * m + r] = v;
      }
  }
  signs_.assign(n, 1.0f);
  if (seed != 0) {
    uint64_t state = seed;
    for (size_t i = 0; i < n; ++i) signs_[i] = (splitmix64_next(state) >> 63) ? -1.0f : 1.0f;
  }
  scaled_.resize(n);
  for (size_t i = 0; i < n; ++i) scaled_[i] = signs_[i] * scale_;
}


// Each contiguous block of m floats: x_blk ← x_blk · h (h row-major m×m).
void HadamardTransform::dense_blocks(float* x, const float* h) const {
  const int m = f_.m;
  float out[kMaxM];
  for (size_t blk = 0; blk < f_.pow2; ++blk) {
    float* xb = x + blk * m;
    int d = 0;
    for (; d + 16 <= m; d += 16) dense_chunk<16>(xb, h, m, d, out);
    for (; d + 4 <= m; d += 4) dense_chunk<4>(xb, h, m, d, out);
    for (; d < m; ++d) dense_chunk<1>(xb, h, m, d, out);
    for (int i = 0; i < m; ++i) xb[i] = out[i];
  }
}

// x ← x · (H_{2^k} ⊗ I_m): radix-2 butterflies between pairs of contiguous spans of h·m floats.
void HadamardTransform::butterfly(float* x) const {
  const size_t m = static_cast<size_t>(f_.m);
  for (size_t h = 1; h < f_.pow2; h *= 2) {
    const size_t span = h * m;
    for (size_t i = 0; i < n_; i += 2 * span) butterfly_span(x + i, x + i + span, span);
  }
}

void HadamardTransform::apply(float* x) const {
  const float* __restrict s = scaled_.data();
  for (size_t i = 0; i < n_; ++i) x[i] *= s[i];
  if (f_.m > 1) dense_blocks(x, hm_.data());
  butterfly(x);
}

void HadamardTransform::apply_inverse(float* x) const {
  butterfly(x);
  if (f_.m > 1) dense_blocks(x, hmt_.data());
  const float* __restrict s = scaled_.data();
  for (size_t i = 0; i < n_; ++i) x[i] *= s[i];
}

void HadamardTransform::apply_rows(float* x, int rows, size_t stride) const {
  if (rows > 1 && stride < n_)
    throw Error("Hadamard apply_rows: stride " + std::to_string(stride) + " < size " +
                    std::to_string(n_),
                kExitInternal);
  for (int r = 0; r < rows; ++r) apply(x + static_cast<size_t>(r) * stride);
}

void HadamardTransform::apply_inverse_rows(float* x, int rows, size_t stride) const {
  if (rows > 1 && stride < n_)
    throw Error("Hadamard apply_inverse_rows: stride " + std::to_string(stride) + " < size " +
                    std::to_string(n_),
                kExitInternal);
  for (int r = 0; r < rows; ++r) apply_inverse(x + static_cast<size_t>(r) * stride);
}

}  // namespace rotor
