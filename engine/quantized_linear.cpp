#include "engine/quantized_linear.h"

#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "engine/scratch.h"
#include "engine/threads.h"

namespace rotor {

namespace {
// Rows per tile, and tokens per tile: as many as keep a tile's integer dots (tokens × rows ×
// blocks) within 2 MB, from 16 to 128. Long tiles let the AVX-512 kernel use AMX, which pays
// only from 32 tokens per call (its weight unpacking is shared by all of them).
constexpr int kTileRows = 64;
int tile_tokens(int blocks) { return std::clamp(8192 / blocks, 16, 128); }
// Below this many multiply-adds (tokens × rows × columns) a layer stays on the calling thread:
// waking the pool would cost more than it saves (stories260K's layers at decode).
constexpr int64_t kMinParallelWork = int64_t{1} << 18;

int tiles(int n, int tile) { return (n + tile - 1) / tile; }

int workers_for(int64_t work) { return work < kMinParallelWork ? 1 : thread_pool().size(); }

// Chunk c of n contiguous chunks of rows: whole row tiles, as even as they come.
std::pair<int, int> row_chunk(int rows, int c, int n) {
  const int t = tiles(rows, kTileRows);
  return {std::min(rows, t * c / n * kTileRows), std::min(rows, t * (c + 1) / n * kTileRows)};
}
}  // namespace

QuantizedLinear::QuantizedLinear(const PackedMatrix& w, const ActQuantParams& act)
    : Linear(w.cols, w.rows), w_(w), act_(act) {
  if (act_.segment == 0) act_.segment = w.cols_padded;
  act_.block = w.block;
}

size_t QuantizedLinear::weight_bytes() const {
  const size_t rows = w_.rows;
  return rows * w_.row_bytes() + rows * w_.groups() * (sizeof(float) + sizeof(int32_t)) +
         rows * w_.blocks() * sizeof(int32_t);
}

std::string QuantizedLinear::type_name() const {
  return "w" + std::to_string(w_.bits) + "a" + std::to_string(act_.bits);
}

void QuantizedLinear::forward(const float* x, int rows, float* y) const {
  if (act_.bits >= 16)
    forward_float(x, rows, y);
  else
    forward_integer(x, rows, y);
}

void QuantizedLinear::forward_integer(const float* x, int rows, float* y) const {
  const KernelTable& k = kernels();
  QuantizedActs& a = acts_;
  a.tokens = rows;
  a.cols_padded = w_.cols_padded;
  a.segment = act_.segment;
  a.block = w_.block;
  a.q.resize(static_cast<size_t>(rows) * w_.cols_padded);
  a.scale.resize(static_cast<size_t>(rows) * (w_.cols_padded / act_.segment));
  a.zero.resize(a.scale.size());
  a.sums.resize(static_cast<size_t>(rows) * w_.blocks());
  k.quantize_acts(x, w_.cols, rows, act_, a);

  // Tasks are (token tile × row chunk); one task does everything when one worker would.
  const int workers = workers_for(int64_t{rows} * w_.rows * w_.cols_padded);
  const int chunks = std::min(workers, tiles(w_.rows, kTileRows));
  const int span = workers == 1 ? rows : tile_tokens(w_.blocks());
  thread_pool().parallel_for(tiles(rows, span) * chunks, [&](int task, int) {
    const int t0 = task / chunks * span;
    const auto [r0, r1] = row_chunk(w_.rows, task % chunks, chunks);
    integer_tiles(t0, std::min(rows, t0 + span), r0, r1, y);
  });
}

void QuantizedLinear::integer_tiles(int t0, int t1, int r0, int r1, float* y) const {
  const KernelTable& k = kernels();
  thread_local std::vector<int32_t> dots_storage;  // per worker
  const int tile = tile_tokens(w_.blocks());
  int32_t* dots = scratch(dots_storage, static_cast<size_t>(std::min(tile, t1 - t0)) *
                                            std::min(kTileRows, r1 - r0) * w_.blocks());
  for (int t = t0; t < t1; t += tile) {
    const int nt = std::min(tile, t1 - t);
    for (int r = r0; r < r1; r += kTileRows) {
      const int r_end = std::min(r1, r + kTileRows);
      k.block_dots(w_, &acts_.q[static_cast<size_t>(t) * w_.cols_padded], w_.cols_padded, nt, r,
                   r_end, dots);
      linear_epilogue(w_, acts_, t, nt, r, r_end, dots,
                      y + static_cast<size_t>(t) * w_.rows, w_.rows);
    }
  }
}

void QuantizedLinear::forward_float(const float* x, int rows, float* y) const {
  const int n = w_.cols;
  const int chunks = std::min(workers_for(int64_t{rows} * w_.rows * n), tiles(w_.rows, kTileRows));
  thread_pool().parallel_for(chunks, [&](int c, int) {
    thread_local std::vector<float> tile_storage;  // per worker
    float* tile = scratch(tile_storage, static_cast<size_t>(kTileRows) * n);
    const auto [begin, end] = row_chunk(w_.rows, c, chunks);
    for (int r0 = begin; r0 < end; r0 += kTileRows) {
      const int r1 = std::min(end, r0 + kTileRows);
      dequantize_rows(w_, r0, r1, tile);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, r1 - r0, n, 1.0f, x, n,
                  tile, n, 0.0f, y + r0, w_.rows);
    }
  });
}

}  // namespace rotor
