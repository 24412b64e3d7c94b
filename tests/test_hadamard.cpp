// The online Hadamard transform (engine/hadamard.h) against its definition — a dense
// x·D·(H_{2^k} ⊗ H_m)/√n built entry by entry — on every ISA's kernel, on random and adversarial
// inputs, plus orthogonality, inversion, the fused output scale, the factorization of n, and
// the validation of the stored matrices (quant/hadamard_tables.h). Kernel-against-scalar checks
// are in test_hadamard_kernels.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/hadamard.h"
#include "quant/hadamard_tables.h"
#include "tests/helpers.h"

using namespace rotor;

namespace {

std::string hadamard_dir() { return test::shared_dir() + "/data/hadamard"; }

// H_n[i][j] from the definition: Sylvester (-1)^popcount(a&c) times H_m[b][d].
int entry(const HadamardTransform& t, const std::vector<int8_t>& hm, size_t i, size_t j) {
  const size_t m = static_cast<size_t>(t.factorization().m);
  const size_t a = i / m, b = i % m, c = j / m, d = j % m;
  int s = (__builtin_popcountll(static_cast<unsigned long long>(a & c)) & 1) ? -1 : 1;
  if (m > 1) s *= hm[b * m + d];
  return s;
}

// Column j of x·D·H_n/√n in double.
double reference_column(const HadamardTransform& t, const std::vector<int8_t>& hm,
                        const std::vector<float>& x, size_t j) {
  const size_t n = t.size();
  double acc = 0;
  for (size_t i = 0; i < n; ++i) acc += double(x[i]) * t.signs()[i] * entry(t, hm, i, j);
  return acc / std::sqrt(double(n));
}

double norm(const std::vector<float>& v) {
  double s = 0;
  for (float f : v) s += double(f) * f;
  return std::sqrt(s);
}

const size_t kSizes[] = {1, 2, 8, 64, 128, 172, 344, 768, 4096, 11008, 14336};
const uint64_t kSeeds[] = {0, 12345};

// One ISA's kernel against the definition on x: every column for n ≤ 1024, the ends and 24
// random columns above; the norm; the inverse. Tolerances relative to ‖x‖.
void check_against_definition(const HadamardTransform& t, const std::vector<int8_t>& hm,
                              const std::vector<float>& x, Isa isa, std::mt19937& rng) {
  CAPTURE(isa_name(isa));
  const size_t n = t.size();
  std::vector<float> y = x;
  kernels_for(isa).hadamard(t.plan(false), y.data(), 1, n);
  std::vector<size_t> cols;
  if (n <= 1024) {
    for (size_t j = 0; j < n; ++j) cols.push_back(j);
  } else {
    std::uniform_int_distribution<size_t> pick(0, n - 1);
    cols = {0, n - 1};
    for (int r = 0; r < 24; ++r) cols.push_back(pick(rng));
  }
  const double xnorm = norm(x);
  double max_err = 0;
  for (size_t j : cols)
    max_err = std::max(max_err, std::fabs(reference_column(t, hm, x, j) - y[j]));
  CHECK(max_err <= 1e-5 * xnorm);
  CHECK(std::fabs(norm(y) - xnorm) <= 1e-5 * xnorm);
  std::vector<float> z = y;
  kernels_for(isa).hadamard(t.plan(true), z.data(), 1, n);
  double inv_err = 0;
  for (size_t i = 0; i < n; ++i) inv_err = std::max(inv_err, std::fabs(double(z[i]) - x[i]));
  CHECK(inv_err <= 1e-5 * xnorm);
}

}  // namespace

TEST_CASE("hadamard factorize") {
  auto f = HadamardTransform::factorize(1);
  CHECK(f.pow2 == 1);
  CHECK(f.m == 1);
  f = HadamardTransform::factorize(4096);
  CHECK(f.pow2 == 4096);
  CHECK(f.log2 == 12);
  CHECK(f.m == 1);
  f = HadamardTransform::factorize(11008);
  CHECK(f.pow2 == 64);
  CHECK(f.m == 172);
  f = HadamardTransform::factorize(768);
  CHECK(f.pow2 == 64);
  CHECK(f.m == 12);
  f = HadamardTransform::factorize(14336);
  CHECK(f.pow2 == 512);
  CHECK(f.m == 28);
  f = HadamardTransform::factorize(40);
  CHECK(f.pow2 == 2);
  CHECK(f.m == 20);  // 40 = 2·20 = 1·40: the largest power of two wins
  f = HadamardTransform::factorize(172);
  CHECK(f.pow2 == 1);
  CHECK(f.m == 172);
  f = HadamardTransform::factorize(128);
  CHECK(f.pow2 == 128);
  CHECK(f.m == 1);
  f = HadamardTransform::factorize(2048);
  CHECK(f.pow2 == 2048);
  CHECK(f.m == 1);
  // 5632 = 2^9·11 (TinyLlama's MLP width): no stored matrix fits, so a clear error.
  CHECK_THROWS_WITH_AS(HadamardTransform::factorize(5632), doctest::Contains("5632 = 2^9 * 11"),
                       Error);
  for (size_t bad : {size_t{0}, size_t{3}, size_t{7}, size_t{100}, size_t{6}, size_t{176},
                     size_t{11000}, size_t{5632}}) {
    CAPTURE(bad);
    try {
      HadamardTransform::factorize(bad);
      FAIL("expected an Error");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find(std::to_string(bad)) != std::string::npos);
    }
    CHECK_THROWS_AS(HadamardTransform(bad, {}, 0), Error);
  }
}

TEST_CASE("hadamard stored matrices load and validate") {
  for (int m : HadamardTransform::allowed_m()) {
    CAPTURE(m);
    const auto h = load_hadamard_matrix(hadamard_dir(), m);
    CHECK(h.size() == static_cast<size_t>(m) * m);
  }
  CHECK(load_hadamard_matrix(hadamard_dir(), 1).empty());
  CHECK(HadamardTransform::allowed_m().back() == kHadamardMaxM);  // the kernels' scratch size
}

TEST_CASE("hadamard matches the dense definition, is orthogonal and inverts") {
  std::mt19937 rng(7);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  for (size_t n : kSizes) {
    const int m = HadamardTransform::factorize(n).m;
    const auto hm = load_hadamard_matrix(hadamard_dir(), m);
    for (uint64_t seed : kSeeds) {
      CAPTURE(n);
      CAPTURE(seed);
      const HadamardTransform t(n, hm, seed);
      REQUIRE(t.size() == n);
      int negative = 0;
      for (float s : t.signs()) {
        REQUIRE((s == 1.0f || s == -1.0f));
        negative += s < 0;
      }
      if (seed == 0) CHECK(negative == 0);
      if (seed != 0 && n >= 64) {
        CHECK(negative > 0);
        CHECK(negative < static_cast<int>(n));
      }

      std::vector<float> x(n);
      for (auto& v : x) v = gauss(rng);
      x[n / 3] += 25.0f;  // an outlier
      for (Isa isa : supported_isas()) check_against_definition(t, hm, x, isa, rng);

      // apply/apply_inverse (the engine's kernel table) undo each other.
      std::vector<float> z = x;
      t.apply(z.data());
      t.apply_inverse(z.data());
      double inv_err = 0;
      for (size_t i = 0; i < n; ++i) inv_err = std::max(inv_err, std::fabs(double(z[i]) - x[i]));
      CHECK(inv_err <= 1e-5 * norm(x));

      // apply_rows on a strided batch equals apply per row; apply_inverse_rows undoes it.
      const int rows = 3;
      const size_t stride = n + 5;
      std::vector<float> batch(rows * stride);
      for (auto& v : batch) v = gauss(rng);
      std::vector<float> expect = batch;
      for (int r = 0; r < rows; ++r) t.apply(expect.data() + r * stride);
      std::vector<float> got = batch;
      t.apply_rows(got.data(), rows, stride);
      CHECK(got == expect);  // same code path: bit-exact; padding untouched
      t.apply_inverse_rows(got.data(), rows, stride);
      double rows_err = 0;
      for (size_t i = 0; i < got.size(); ++i)
        rows_err = std::max(rows_err, std::fabs(double(got[i]) - batch[i]));
      CHECK(rows_err <= 1e-5 * norm(batch));

      // (2b) Images of the basis vectors (rows of D·H/√n) are orthonormal.
      if (n <= 512) {
        std::vector<float> q(n * n, 0.0f);
        for (size_t i = 0; i < n; ++i) q[i * n + i] = 1.0f;
        t.apply_rows(q.data(), static_cast<int>(n), n);
        double worst = 0;
        for (size_t a = 0; a < n; ++a)
          for (size_t b = a; b < n; ++b) {
            double dot = 0;
            for (size_t c = 0; c < n; ++c) dot += double(q[a * n + c]) * q[b * n + c];
            worst = std::max(worst, std::fabs(dot - (a == b ? 1.0 : 0.0)));
          }
        CHECK(worst <= 1e-5);
      }
    }
  }
}

TEST_CASE("hadamard matches the definition on adversarial inputs on every ISA") {
  std::mt19937 rng(11);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  for (size_t n : {size_t{8}, size_t{128}, size_t{172}, size_t{4096}, size_t{11008}}) {
    const auto hm = load_hadamard_matrix(hadamard_dir(), HadamardTransform::factorize(n).m);
    const HadamardTransform t(n, hm, 777);
    for (int mode = 0; mode < 4; ++mode) {
      CAPTURE(n);
      CAPTURE(mode);
      std::vector<float> x(n, 0.0f);
      switch (mode) {
        case 0: for (auto& v : x) v = gauss(rng) * 1e30f; break;   // huge
        case 1: for (auto& v : x) v = gauss(rng) * 1e-30f; break;  // tiny
        case 2: std::fill(x.begin(), x.end(), -3.5f); break;       // all equal
        default: x[n - 1] = 1e4f; break;                           // a single spike
      }
      for (Isa isa : supported_isas()) check_against_definition(t, hm, x, isa, rng);
    }
  }
}

TEST_CASE("hadamard fused output scale") {
  std::mt19937 rng(3);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  for (size_t n : {size_t{8}, size_t{128}, size_t{172}, size_t{768}, size_t{4096}}) {
    CAPTURE(n);
    const HadamardTransform t(n, load_hadamard_matrix(hadamard_dir(),
                                                      HadamardTransform::factorize(n).m), 5);
    std::vector<float> post(n), x(n);
    for (auto& v : post) v = 0.5f + std::fabs(gauss(rng));
    for (auto& v : x) v = gauss(rng);
    std::vector<float> expect = x;
    t.apply(expect.data());
    for (size_t j = 0; j < n; ++j) expect[j] *= post[j];
    std::vector<float> got = x;
    t.apply(got.data(), post.data());
    CHECK(got == expect);  // the same multiply, fused into the last pass
    // apply_rows with the scale: per row, padding untouched.
    const int rows = 4;
    const size_t stride = n + 2;
    std::vector<float> batch(rows * stride);
    for (auto& v : batch) v = gauss(rng);
    std::vector<float> want = batch;
    for (int r = 0; r < rows; ++r) t.apply(want.data() + r * stride, post.data());
    t.apply_rows(batch.data(), rows, stride, post.data());
    CHECK(batch == want);
  }
  const HadamardTransform t(64, {}, 1);
  std::vector<float> post(64, 2.0f);
  CHECK_THROWS_AS(t.plan(true, post.data()), Error);  // the inverse has no output scale
}

TEST_CASE("hadamard signs are deterministic and seed-dependent") {
  const HadamardTransform a(4096, {}, 99), b(4096, {}, 99), c(4096, {}, 100);
  CHECK(a.signs() == b.signs());
  CHECK(a.signs() != c.signs());
  // Pins the documented generator (the quantizer and the engine must agree on it): splitmix64
  // from state = seed, s_i = -1 iff the top bit of the i-th output is set.
  uint64_t state = 99;
  int negative = 0;
  for (size_t i = 0; i < 4096; ++i) {
    state += 0x9E3779B97F4A7C15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float expect = (z >> 63) ? -1.0f : 1.0f;
    if (a.signs()[i] != expect) {
      FAIL("sign " << i << " differs from splitmix64");
      break;
    }
    negative += expect < 0;
  }
  CHECK(negative > 1900);
  CHECK(negative < 2200);
}

TEST_CASE("hadamard rejects bad matrices") {
  const auto h12 = load_hadamard_matrix(hadamard_dir(), 12);
  CHECK_NOTHROW(HadamardTransform(768, h12));
  CHECK_THROWS_AS(HadamardTransform(768, {}), Error);                       // missing
  CHECK_THROWS_AS(HadamardTransform(768, std::vector<int8_t>(143, 1)), Error);  // wrong size
  CHECK_THROWS_AS(HadamardTransform(64, h12), Error);  // m = 1 takes no matrix
  auto bad = h12;
  bad[5] = 0;
  CHECK_THROWS_AS(HadamardTransform(768, bad), Error);  // not ±1
  bad = h12;
  bad[5] = static_cast<int8_t>(-bad[5]);
  CHECK_THROWS_WITH_AS(HadamardTransform(768, bad),
                       doctest::Contains("not orthogonal"), Error);
}

TEST_CASE("hadamard rejects bad matrix files") {
  test::TempDir dir;
  const std::string good = test::read_file(hadamard_dir() + "/had12.txt");
  auto expect_error = [&](const std::string& contents, const std::string& needle) {
    CAPTURE(contents);
    test::write_file(dir.file("had12.txt"), contents);
    CHECK_THROWS_WITH_AS(load_hadamard_matrix(dir.path(), 12), doctest::Contains(needle.c_str()),
                         Error);
  };
  // The real file, with CRLF line ends and no header, still loads.
  {
    std::string crlf;
    for (char ch : good) {
      if (ch == '\n') crlf += '\r';
      crlf += ch;
    }
    test::write_file(dir.file("had12.txt"), crlf);
    CHECK(load_hadamard_matrix(dir.path(), 12) == load_hadamard_matrix(hadamard_dir(), 12));
  }
  const size_t body = good.find('\n') + 1;  // after the '#' header
  const std::string rows = good.substr(body);
  const std::string first_row = rows.substr(0, 13);
  expect_error(rows.substr(0, rows.size() - 13), "11 matrix rows, expected 12");  // one short
  expect_error(rows + first_row, "more than 12 matrix rows");
  std::string bad = rows;
  bad[3] = 'x';
  expect_error(bad, "expected '+' or '-'");
  bad = rows;
  bad.insert(2, "+");
  expect_error(bad, "13 characters, expected 12");
  bad = rows;
  bad[14] = bad[14] == '+' ? '-' : '+';  // flips one entry of row 1
  expect_error(bad, "not orthogonal");
  const std::string dup = first_row + first_row + rows.substr(26);  // row 0 twice
  expect_error(dup, "not orthogonal");
  CHECK_THROWS_WITH_AS(load_hadamard_matrix(dir.path(), 20), doctest::Contains("had20.txt"),
                       Error);  // missing file
  CHECK_THROWS_AS(load_hadamard_matrix(dir.path(), 0), Error);
}
