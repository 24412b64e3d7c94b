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
          CAPTURE(isa_name(isa));
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
      CAPTURE(k); CAPTURE(isa_name(isa));
      std::vector<float> y = x;
      kernels_for(isa).hadamard(plan.p, y.data(), 1, plan.p.n);
      double after = 0;
      for (float v : y) after += double(v) * v;
      CHECK(std::fabs(std::sqrt(after) - std::sqrt(before)) <= 1e-5 * std::sqrt(before));
    }
  }
}
