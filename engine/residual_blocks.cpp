#include "engine/residual_blocks.h"

#include <cblas.h>

#include <cstring>
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/scratch.h"
#include "engine/threads.h"

namespace rotor {

namespace {

// Up to this many rows, f16 blocks are multiplied as they are (vecmat_f16: each block read once,
// widened in registers, but compute-bound beyond a few rows); longer prompts widen each block
// into floats for sgemm. LLaMA-2-7B psot-layer synth file, prefill tok/s, 2 threads, vecmat
// against sgemm: 4 tokens 17.5–23.0 against 6.9–7.1, 8: 26.5–26.9 against 18.3–18.5, 16:
// 18.6–18.7 against 23.6–24.0, 32: 18.6–19.0 against 24.8–27.3.
constexpr int kVecmatRows = 8;

// Columns [j0, j1) of chunk c of `chunks` over a block of b columns, in whole cache lines of f16
// (32 columns), so the vector kernels get no tails.
void chunk_columns(int b, int c, int chunks, int* j0, int* j1) {
  *j0 = b * c / chunks / 32 * 32;
  *j1 = c + 1 == chunks ? b : b * (c + 1) / chunks / 32 * 32;
}

}  // namespace

void blockdiag_matmul(float* x, int rows, int dim, const ResidualBlocks& m, int n_blocks,
                      float* scratch) {
  const int b = dim / n_blocks;
  const size_t block_size = static_cast<size_t>(b) * b;
  const int threads = thread_pool().size();
  if (m.f16 && rows <= kVecmatRows) {
    // Each block split across the pool by column ranges only as far as the pool needs: whole
    // rows stream from memory faster than parts of them (vecmat_f16_dram: 24.8 against 15.4
    // GB/s for half rows of 2048). Each y[j] is computed the same way in any range, so the
    // result does not depend on the thread count.
    const int chunks = (threads + n_blocks - 1) / n_blocks;
    thread_pool().parallel_for(n_blocks * chunks, [&](int task, int) {
      const int k = task / chunks;
      int j0, j1;
      chunk_columns(b, task % chunks, chunks, &j0, &j1);
      kernels().vecmat_f16(x + k * b, dim, rows, m.f16 + k * block_size + j0, b, j1 - j0, b,
                           scratch + k * b + j0, dim);
    });
  } else if (rows == 1) {
    // Decode with f32 blocks: sgemv per column range (OpenBLAS's sgemm would repack the whole
    // block for a single row every token).
    thread_pool().parallel_for(n_blocks * threads, [&](int task, int) {
      const int k = task / threads;
      int j0, j1;
      chunk_columns(b, task % threads, threads, &j0, &j1);
      // Columns [j0, j1) of x_k · M_k: rows j0..j1 of M_kᵀ.
      cblas_sgemv(CblasRowMajor, CblasTrans, b, j1 - j0, 1.0f, m.f32 + k * block_size + j0, b,
                  x + k * b, 1, 0.0f, scratch + k * b + j0, 1);
    });
  } else {
    // Prefill: sgemm per block, split across the pool by column ranges (OpenBLAS itself runs
    // single-threaded here, see engine/threads.h); f16 blocks are widened into floats first.
    thread_local std::vector<float> storage;
    float* const widened = m.f16 ? rotor::scratch(storage, block_size) : nullptr;
    for (int k = 0; k < n_blocks; ++k) {
      const float* block = widened;
      if (m.f16)
        thread_pool().parallel_for(threads, [&](int c, int) {
          const size_t i0 = block_size * c / threads, i1 = block_size * (c + 1) / threads;
          kernels().f16_to_f32(m.f16 + k * block_size + i0, i1 - i0, widened + i0);
        });
      else
        block = m.f32 + k * block_size;
      thread_pool().parallel_for(threads, [&](int c, int) {
        int j0, j1;
        chunk_columns(b, c, threads, &j0, &j1);
        if (j1 > j0)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, j1 - j0, b, 1.0f,
                      x + k * b, dim, block + j0, b, 0.0f, scratch + k * b + j0, dim);
      });
    }
  }
  std::memcpy(x, scratch, sizeof(float) * rows * dim);
}

}  // namespace rotor
