// Every ISA's Hadamard pass (KernelTable::hadamard) against the scalar reference, on random and
// adversarial inputs, with and without the pre/post scales, over strided rows; plus norm
// preservation for the power-of-two sizes. Cross-built with the NEON kernels (see the Makefile),
// so it needs nothing outside engine/kernels/. The transform itself (engine/hadamard.h) is
// checked against its dense definition with the stored matrices in test_hadamard.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/kernels.h"

using namespace rotor;

namespace {

// A plan over n = 2^log2 · m with a random ±1 h: the kernels use h only as given numbers, so it
// need not be a Hadamard matrix here.
struct RandomPlan {
  std::vector<float> h, pre, post;
  std::vector<uint16_t> h_signs;
  HadamardPlan p;

  RandomPlan(int log2, int m, bool with_pre, bool with_post, std::mt19937& rng) {
    p.log2 = log2;
    p.m = m;
    p.n = (size_t{1} << log2) * m;
    std::uniform_int_distribution<int> coin(0, 1);
    std::uniform_real_distribution<float> scale(0.25f, 4.0f);
    if (m > 1) {
      p.m_pad = (m + kHadamardPad - 1) / kHadamardPad * kHadamardPad;
      h.assign(static_cast<size_t>(m) * p.m_pad, 0.0f);
      for (int b = 0; b < m; ++b)
        for (int d = 0; d < m; ++d) h[b * p.m_pad + d] = coin(rng) ? 1.0f : -1.0f;
      p.h = h.data();
      const int words = p.m_pad / 16;  // HadamardPlan's layout: 16 columns per word
      h_signs.assign(static_cast<size_t>(m) * words, 0);
      for (int b = 0; b < m; ++b)
        for (int d = 0; d < m; ++d)
          if (h[b * p.m_pad + d] < 0) h_signs[b * words + d / 16] |= 1u << (d % 16);
      p.h_signs = h_signs.data();
    }
    const float inv_sqrt = 1.0f / std::sqrt(static_cast<float>(p.n));
    for (size_t i = 0; with_pre && i < p.n; ++i)
      pre.push_back((coin(rng) ? 1.0f : -1.0f) * inv_sqrt);
    for (size_t i = 0; with_post && i < p.n; ++i) post.push_back(scale(rng));
    p.pre = with_pre ? pre.data() : nullptr;
    p.post = with_post ? post.data() : nullptr;
  }
};

// Inputs: 0 random normal, 1 huge (±1e30), 2 tiny (±1e-30), 3 all equal, 4 a single spike,
// 5 all zero.
void fill(std::vector<float>& x, int mode, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::fill(x.begin(), x.end(), 0.0f);
  switch (mode) {
    case 0: for (float& v : x) v = normal(rng); break;
    case 1: for (float& v : x) v = normal(rng) * 1e30f; break;
    case 2: for (float& v : x) v = normal(rng) * 1e-30f; break;
    case 3: std::fill(x.begin(), x.end(), 0.75f); break;
    case 4: x[x.size() / 3] = -1e4f; break;
    default: break;
  }
}

std::vector<Isa> isas_under_test() {
  std::vector<Isa> isas = supported_isas();
  std::string s;
  for (Isa i : isas) s += std::string(isa_name(i)) + " ";
  MESSAGE("Hadamard kernels under test: " << s);
  return isas;
}

}  // namespace

TEST_CASE("kernels: the Hadamard pass matches the scalar reference") {
  std::mt19937 rng(2024);
  const auto isas = isas_under_test();
  struct Shape { int log2, m; };
  // Powers of two from 1 to 4096 (shorter than, equal to and longer than every vector and
  // register block), every allowed m alone and with a few blocks, and the 7B/8B MLP sizes.
  std::vector<Shape> shapes;
  for (int k : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12}) shapes.push_back({k, 1});
  for (int m : {12, 20, 28, 36, 40, 52, 60, 108, 140, 156, 172})
    for (int k : {0, 1, 3}) shapes.push_back({k, m});
  shapes.push_back({6, 172});  // 11008
  shapes.push_back({9, 28});   // 14336
  for (const Shape& s : shapes)
    for (int variant = 0; variant < 4; ++variant) {
      const bool with_pre = variant & 1, with_post = variant & 2;
      RandomPlan plan(s.log2, s.m, with_pre, with_post, rng);
      const size_t n = plan.p.n;
      for (int mode = 0; mode < 6; ++mode) {
        CAPTURE(s.log2); CAPTURE(s.m); CAPTURE(with_pre); CAPTURE(with_post); CAPTURE(mode);
        // Rows further apart than n (padding must stay untouched); fewer rows for big n.
        const int rows = n <= 512 ? 3 : 1;
        const size_t stride = n + 3;
        std::vector<float> x(rows * stride);
        fill(x, mode, rng);
        std::vector<float> ref = x;
        kScalarKernels.hadamard(plan.p, ref.data(), rows, stride);
        float peak = 0.0f;
        for (float v : ref) peak = std::max(peak, std::fabs(v));
        REQUIRE(std::isfinite(peak));
        for (Isa isa : isas) {
          CAPTURE(std::string(isa_name(isa)));
          std::vector<float> got = x;
          kernels_for(isa).hadamard(plan.p, got.data(), rows, stride);
          // Sums in another order would differ by a few ulps of the row's largest value.
          double worst = 0;
          for (size_t i = 0; i < got.size(); ++i) {
            if (i % stride >= n) REQUIRE(got[i] == x[i]);  // padding
            worst = std::max(worst, std::fabs(double(got[i]) - ref[i]));
          }
          CHECK(worst <= 1e-5 * peak);
        }
      }
    }
}

// Every ISA gives the scalar reference's floats exactly (hadamard_simd.h: the same operations in
// the same order, the dense product's ±1 read as floats or, on AVX-512 when the plan has them,
// as sign bits: each plan runs with and without), on inputs chosen to expose any other order of
// the sums: magnitudes spread over the whole float range with mixed signs (cancellations),
// ±huge values, subnormals, zeros. Zeros compare equal whatever their sign: on a row shorter
// than a vector (m = 1) the SIMD kernels add the +0 of the unused lanes, which turns a −0 into
// +0.
TEST_CASE("kernels: the Hadamard pass is bit-identical to the scalar reference") {
  std::mt19937 rng(77);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> coin(0, 1), exponent(-149, 100);
  std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
  const int kModes = 8;
  auto value = [&](int mode) -> float {
    const float sign = coin(rng) ? 1.0f : -1.0f;
    switch (mode) {
      case 0: return normal(rng);
      case 1: return sign * std::ldexp(mantissa(rng), exponent(rng));  // any magnitude
      case 2: return sign * std::ldexp(mantissa(rng), coin(rng) ? 100 : -100);  // ±huge, ±tiny
      case 3: return sign * std::ldexp(mantissa(rng), -140);  // subnormal
      case 4: return coin(rng) ? sign * 1e-41f : normal(rng);  // subnormals among normals
      case 5: return coin(rng) ? sign * 0.0f : sign * 3.0f;  // zeros of both signs, ties
      case 6: return sign;  // ±1: exact sums with many cancellations to zero
      default: return -0.0f;
    }
  };
  const auto isas = supported_isas();
  std::vector<std::pair<int, int>> shapes;  // (log2, m)
  for (int k : {0, 1, 2, 3, 4, 6, 9}) shapes.push_back({k, 1});
  for (int m : {12, 20, 28, 36, 40, 52, 60, 108, 140, 156, 172})
    for (int k : {0, 1, 3, 4}) shapes.push_back({k, m});  // k ≥ 3: AVX-512's groups of 8 blocks
  shapes.push_back({6, 172});  // 11008
  shapes.push_back({9, 28});   // 14336
  for (auto [log2, m] : shapes)
    for (int variant = 0; variant < 4; ++variant) {
      RandomPlan plan(log2, m, variant & 1, variant & 2, rng);
      const size_t n = plan.p.n, stride = n + 5;
      const int rows = kModes;
      std::vector<float> x(rows * stride);
      for (int r = 0; r < rows; ++r)
        for (size_t i = 0; i < stride; ++i) x[r * stride + i] = value(r);
      std::vector<float> ref = x;
      kScalarKernels.hadamard(plan.p, ref.data(), rows, stride);
      for (Isa isa : isas)
        for (bool bits : {true, false}) {
          CAPTURE(log2); CAPTURE(m); CAPTURE(variant); CAPTURE(std::string(isa_name(isa)));
          CAPTURE(bits);
          HadamardPlan p = plan.p;
          if (!bits) p.h_signs = nullptr;
          std::vector<float> got = x;
          kernels_for(isa).hadamard(p, got.data(), rows, stride);
          size_t differ = 0, first = 0;
          for (size_t i = got.size(); i-- > 0;)
            if (!(got[i] == ref[i])) ++differ, first = i;
          CAPTURE(first / stride); CAPTURE(first % stride); CAPTURE(got[first]);
          CAPTURE(ref[first]);
          CHECK(differ == 0);
        }
    }
}

TEST_CASE("kernels: the normalized power-of-two Hadamard pass keeps the norm") {
  std::mt19937 rng(31);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int k : {0, 2, 3, 4, 5, 7, 11, 13}) {
    RandomPlan plan(k, 1, true, false, rng);
    std::vector<float> x(plan.p.n);
    for (float& v : x) v = normal(rng);
    double before = 0;
    for (float v : x) before += double(v) * v;
    for (Isa isa : supported_isas()) {
      CAPTURE(k); CAPTURE(std::string(isa_name(isa)));
      std::vector<float> y = x;
      kernels_for(isa).hadamard(plan.p, y.data(), 1, plan.p.n);
      double after = 0;
      for (float v : y) after += double(v) * v;
      CHECK(std::fabs(std::sqrt(after) - std::sqrt(before)) <= 1e-5 * std::sqrt(before));
    }
  }
}
