#include "engine/linear.h"

#include <cblas.h>

#include <algorithm>
#include <cstdint>

#include "engine/threads.h"

namespace rotor {

namespace {
// Rows per chunk are a multiple of this (whole cache lines of y).
constexpr int kRowAlign = 64;
}  // namespace

// OpenBLAS runs single-threaded (set_thread_count): the pool splits the output rows instead,
// so its threads and OpenBLAS's never spin against each other.
void LinearF32::forward(const float* x, int rows, float* y) const {
  const int n = in_features(), m = out_features();
  const int row_tiles = (m + kRowAlign - 1) / kRowAlign;
  const int workers = std::min(workers_for(int64_t{rows} * m * n), row_tiles);
  thread_pool().parallel_for(workers, [&](int c, int) {
    const int r0 = std::min(m, row_tiles * c / workers * kRowAlign);
    const int r1 = std::min(m, row_tiles * (c + 1) / workers * kRowAlign);
    const float* w = w_ + static_cast<size_t>(r0) * n;
    if (rows == 1)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, r1 - r0, n, 1.0f, w, n, x, 1, 0.0f, y + r0, 1);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, r1 - r0, n, 1.0f, x, n, w, n,
                  0.0f, y + r0, m);
  });
}

size_t LinearF32::weight_bytes() const {
  return sizeof(float) * static_cast<size_t>(in_features()) * out_features();
}

void LinearF32::to_float(float* out) const {
  std::copy_n(w_, static_cast<size_t>(in_features()) * out_features(), out);
}

}  // namespace rotor
