// Every ISA's f16 kernels (KernelTable::vecmat_f16 and f16_to_f32) against the scalar
// reference, float for float, on random and adversarial inputs; the reference against a
// double-precision product; every f16 value's conversion. Cross-built with the NEON kernels
// (see the Makefile), so it needs nothing outside engine/kernels/.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/import/dtype.h"
#include "engine/kernels/kernels.h"

using namespace rotor;

namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

bool finite_f16(uint16_t h) { return (h & 0x7C00u) != 0x7C00u; }

// Matrices: 0 values of an orthogonal block's size (|m| < 1/4), 1 any finite f16 (subnormals
// to ±65504), 2 all 1, 3 subnormals only, 4 a single ±65504 in zeros.
std::vector<uint16_t> matrix(size_t n, int mode, std::mt19937& rng) {
  std::vector<uint16_t> m(n, 0);
  std::uniform_int_distribution<int> any(0, 0xFFFF), sub(1, 0x3FF), coin(0, 1);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (uint16_t& h : m) {
    switch (mode) {
      case 0: {  // round a float to the nearest f16 by search over the positive codes
        const float v = normal(rng);
        uint16_t lo = 0, hi = 0x7BFF;
        const float a = std::fabs(v);
        while (lo < hi) {
          const uint16_t mid = static_cast<uint16_t>((lo + hi + 1) / 2);
          if (f16_to_f32(mid) <= a) lo = mid; else hi = static_cast<uint16_t>(mid - 1);
        }
        h = static_cast<uint16_t>(lo | (v < 0 ? 0x8000u : 0u));
        break;
      }
      case 1:
        do h = static_cast<uint16_t>(any(rng)); while (!finite_f16(h));
        break;
      case 2: h = 0x3C00; break;
      case 3: h = static_cast<uint16_t>(sub(rng) | (coin(rng) ? 0x8000u : 0u)); break;
      default: break;
    }
  }
  if (mode == 4) m[n / 2] = coin(rng) ? 0x7BFF : 0xFBFF;
  return m;
}

// Inputs: 0 normal, 1 huge (±1e30: products overflow to ±inf), 2 tiny (±1e-30), 3 alternating
// ±1e8 (cancellation).
std::vector<float> vec(int n, int mode, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) {
    switch (mode) {
      case 0: x[i] = normal(rng); break;
      case 1: x[i] = normal(rng) * 1e30f; break;
      case 2: x[i] = normal(rng) * 1e-30f; break;
      default: x[i] = i % 2 ? -1e8f : 1e8f; break;
    }
  }
  return x;
}

}  // namespace

TEST_CASE("kernels: vecmat_f16 is bit-identical to the scalar reference") {
  std::mt19937 rng(77);
  struct Shape { int rows, cols, pad; };
  // Rows around the four-row passes, columns around every vector width, strided rows, and a
  // 7B residual block's half (one decode task).
  const Shape shapes[] = {{1, 1, 0},   {3, 7, 1},     {4, 16, 0},   {5, 31, 3},   {8, 32, 0},
                          {9, 33, 5},  {17, 100, 28}, {64, 64, 0},  {172, 172, 4},
                          {2048, 1024, 1024}};
  for (const Shape& s : shapes)
    for (int mm = 0; mm < 5; ++mm)
      for (int xm = 0; xm < 4; ++xm)
        for (int tokens : {1, 3}) {
          // The decode-sized block with realistic values only: the reference's std::fma is a
          // library call without FMA flags, slow enough to matter under the sanitizers and qemu.
          if (s.rows > 1000 && (mm != 0 || xm != 0)) continue;
          CAPTURE(s.rows); CAPTURE(s.cols); CAPTURE(mm); CAPTURE(xm); CAPTURE(tokens);
          const size_t ld = s.cols + s.pad, xs = s.rows + 2, ys = s.cols + 1;
          const std::vector<uint16_t> m = matrix(s.rows * ld, mm, rng);
          const std::vector<float> x = vec(static_cast<int>(tokens * xs), xm, rng);
          std::vector<float> want(tokens * ys, -1.0f);
          kernels_for(Isa::kScalar)
              .vecmat_f16(x.data(), xs, tokens, m.data(), s.rows, s.cols, ld, want.data(), ys);
          // A token's result is what it gives alone.
          std::vector<float> last(s.cols);
          kernels_for(Isa::kScalar)
              .vecmat_f16(&x[(tokens - 1) * xs], xs, 1, m.data(), s.rows, s.cols, ld, last.data(), ys);
          CHECK(std::equal(last.begin(), last.end(), &want[(tokens - 1) * ys],
                           [](float a, float b) { return bits(a) == bits(b) || (std::isnan(a) && std::isnan(b)); }));
          for (Isa isa : supported_isas()) {
            CAPTURE(isa_name(isa));
            std::vector<float> got(tokens * ys, -1.0f);  // the gap after each row: untouched
            kernels_for(isa).vecmat_f16(x.data(), xs, tokens, m.data(), s.rows, s.cols, ld,
                                        got.data(), ys);
            int mismatches = 0;
            for (size_t i = 0; i < got.size(); ++i)
              if (bits(got[i]) != bits(want[i]) && !(std::isnan(got[i]) && std::isnan(want[i])))
                ++mismatches;
            CHECK(mismatches == 0);
          }
        }
}

TEST_CASE("kernels: the vecmat_f16 reference is the product x·m") {
  std::mt19937 rng(5);
  for (int mm : {0, 1, 3}) {
    const int rows = 300, cols = 70;
    const std::vector<uint16_t> m = matrix(static_cast<size_t>(rows) * cols, mm, rng);
    const std::vector<float> x = vec(rows, 0, rng);
    std::vector<float> y(cols);
    kernels_for(Isa::kScalar).vecmat_f16(x.data(), rows, 1, m.data(), rows, cols, cols, y.data(), cols);
    for (int j = 0; j < cols; ++j) {
      double sum = 0, mag = 0;
      for (int i = 0; i < rows; ++i) {
        const double p = static_cast<double>(x[i]) * f16_to_f32(m[i * cols + j]);
        sum += p;
        mag += std::fabs(p);
      }
      CAPTURE(mm); CAPTURE(j);
      CHECK(std::fabs(y[j] - sum) <= 1e-6 * mag + 1e-300);
    }
  }
}

TEST_CASE("kernels: f16_to_f32 converts every f16 value exactly") {
  CHECK(f16_to_f32(0x3C00) == 1.0f);
  CHECK(f16_to_f32(0xC000) == -2.0f);
  CHECK(f16_to_f32(0x7BFF) == 65504.0f);
  CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));  // the smallest subnormal
  CHECK(f16_to_f32(0x03FF) == std::ldexp(1023.0f, -24));
  CHECK(bits(f16_to_f32(0x8000)) == 0x80000000u);
  CHECK(std::isinf(f16_to_f32(0x7C00)));
  CHECK(std::isnan(f16_to_f32(0x7E00)));
  std::vector<uint16_t> all(65536 + 5);  // every value, then an odd tail
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
  std::vector<float> want(all.size());
  kernels_for(Isa::kScalar).f16_to_f32(all.data(), all.size(), want.data());
  for (size_t i = 0; i < all.size(); ++i) REQUIRE(bits(want[i]) == bits(f16_to_f32(all[i])));
  for (Isa isa : supported_isas()) {
    CAPTURE(isa_name(isa));
    std::vector<float> got(all.size() + 1, -1.0f);
    kernels_for(isa).f16_to_f32(all.data(), all.size(), got.data());
    int mismatches = 0;
    for (size_t i = 0; i < all.size(); ++i)
      if (std::isnan(want[i]) ? !std::isnan(got[i]) : bits(got[i]) != bits(want[i])) ++mismatches;
    CHECK(mismatches == 0);
    CHECK(got[all.size()] == -1.0f);
  }
}

TEST_CASE("f32_to_f16 rounds to the nearest f16, ties to even") {
  std::mt19937 rng(7);
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    if (!finite_f16(static_cast<uint16_t>(h))) continue;
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    REQUIRE(f32_to_f16(f) == h);  // every finite value round-trips
    // Between h and the next value up in magnitude: the nearer one, the even one at the tie.
    const uint16_t up = static_cast<uint16_t>(h + 1);
    if ((h & 0x7FFFu) == 0x7BFFu) continue;  // 65504: no finite value above
    const float g = f16_to_f32(up);
    const float mid = 0.5f * (f + g);  // exact: f16 values have few significant bits
    CAPTURE(h);
    REQUIRE(f32_to_f16(mid) == (h % 2 == 0 ? h : up));
    std::uniform_real_distribution<float> between(0.0f, 1.0f);
    const float t = between(rng);
    const float x = f + (g - f) * t;
    if (x != mid && x != f && x != g)
      REQUIRE(f32_to_f16(x) == (std::fabs(x - f) < std::fabs(g - x) ? h : up));
  }
  CHECK(f32_to_f16(65519.0f) == 0x7BFF);  // rounds down to the largest finite value
  CHECK(f32_to_f16(65520.0f) == 0x7C00);  // rounds up past it
  CHECK(f32_to_f16(-1e30f) == 0xFC00);
  CHECK(f32_to_f16(std::ldexp(1.0f, -26)) == 0x0000);  // under half the smallest subnormal
  CHECK(f32_to_f16(std::ldexp(3.0f, -26)) == 0x0001);
}
