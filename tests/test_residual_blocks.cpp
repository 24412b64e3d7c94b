// psot-layer's residual basis change (engine/residual_blocks.h) in both storage types, in decode
// (one row: the f16 kernel or sgemv per column range) and prefill (sgemm, f16 widened first),
// against a double-precision block-diagonal product.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/import/dtype.h"
#include "engine/residual_blocks.h"
#include "engine/threads.h"

using namespace rotor;

TEST_CASE("residual blocks: f16 and f32 blocks give the block-diagonal product") {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> code(0, 0x33FF);  // f16 values in (−0.25, 0.25)
  for (int threads : {1, 2})
    for (int n_blocks : {1, 2})
      for (int rows : {1, 5, 12}) {  // decode, a short prompt (vecmat_f16), a longer one (sgemm)
        CAPTURE(threads); CAPTURE(n_blocks); CAPTURE(rows);
        set_thread_count(threads);
        const int dim = 96, b = dim / n_blocks;
        std::vector<uint16_t> half(static_cast<size_t>(n_blocks) * b * b);
        std::vector<float> full(half.size());
        for (size_t i = 0; i < half.size(); ++i) {
          half[i] = static_cast<uint16_t>(code(rng) | (i % 3 ? 0 : 0x8000));
          full[i] = f16_to_f32(half[i]);  // the same matrix in f32
        }
        std::vector<float> x(static_cast<size_t>(rows) * dim);
        for (float& v : x) v = normal(rng);
        std::vector<double> want(x.size(), 0.0);
        for (int r = 0; r < rows; ++r)
          for (int k = 0; k < n_blocks; ++k)
            for (int j = 0; j < b; ++j)
              for (int i = 0; i < b; ++i)
                want[r * dim + k * b + j] +=
                    static_cast<double>(x[r * dim + k * b + i]) * full[(k * b + i) * b + j];
        for (bool f16 : {false, true}) {
          CAPTURE(f16);
          ResidualBlocks m;
          if (f16) m.f16 = half.data(); else m.f32 = full.data();
          CHECK(m.element_bytes() == (f16 ? 2u : 4u));
          std::vector<float> y = x, scratch(x.size());
          blockdiag_matmul(y.data(), rows, dim, m, n_blocks, scratch.data());
          double worst = 0;
          for (size_t i = 0; i < y.size(); ++i) worst = std::max(worst, std::fabs(y[i] - want[i]));
          CHECK(worst < 1e-5);
        }
      }
  set_thread_count(default_thread_count());
}
