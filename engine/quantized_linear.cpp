#include "engine/quantized_linear.h"

#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "engine/parallel_items.h"
#include "engine/scratch.h"
#include "engine/threads.h"

namespace rotor {

namespace {
// Rows per tile, and tokens per tile: as many as keep a tile's integer dots (tokens × rows ×
// blocks) within 2 MB, from 16 to 128. Long tiles let the AVX-512 kernel use AMX, which pays
// only from 32 tokens per call (its weight unpacking is shared by all of them).
constexpr int kTileRows = 64;
// Rows per tile in decode (one token), each tile one kernel call and one epilogue: every call
// costs time the weight stream does not hide, and with 64 rows (64 KB of TinyLlama's 4-bit
// gate/up) two threads read 27–29 GB/s against 30–31 with 256 (docs/BENCHMARKS.md).
constexpr int kDecodeTileRows = 256;
int tile_rows(int tokens) { return tokens == 1 ? kDecodeTileRows : kTileRows; }
int tile_tokens(int blocks) { return std::clamp(8192 / blocks, 16, 128); }

int tiles(int n, int tile) { return (n + tile - 1) / tile; }

// Chunk c of n contiguous chunks of t tiles, as even as they come.
std::pair<int, int> tile_chunk(int t, int c, int n) { return {t * c / n, t * (c + 1) / n}; }

// Chunk c of n contiguous chunks of rows: whole row tiles.
std::pair<int, int> row_chunk(int rows, int c, int n) {
  const auto [begin, end] = tile_chunk(tiles(rows, kTileRows), c, n);
  return {std::min(rows, begin * kTileRows), std::min(rows, end * kTileRows)};
}
}  // namespace

QuantizedLinear::QuantizedLinear(const PackedMatrix& w, const ActQuantParams& act)
    : Linear(w.cols, w.rows), w_(w), act_(act) {
  if (act_.segment == 0) act_.segment = w.cols_padded;
  act_.block = w.block;
}

size_t QuantizedLinear::weight_bytes() const {
  const size_t rows = w_.rows;
  const size_t sums = centered_decode(1) ? 0 : rows * w_.blocks() * sizeof(int32_t);
  return rows * w_.row_bytes() + rows * w_.groups() * (sizeof(float) + sizeof(int32_t)) + sums;
}

bool QuantizedLinear::centered_decode(int rows) const {
  return rows == 1 && kernels().centered_dots && w_.bits == 4 && act_.bits == 4 &&
         w_.blocks() > 1 && w_.block % kChunk == 0;
}

std::string QuantizedLinear::type_name() const {
  return "w" + std::to_string(w_.bits) + "a" + std::to_string(act_.bits);
}

void QuantizedLinear::forward(const float* x, int rows, float* y) const {
  if (!integer()) return forward_float(x, rows, y);
  const Linear* self = this;
  integer_job(&self, 1, quantize(x, rows), rows, &y);
}

void forward_shared(const Linear* const* linears, int count, const float* x, int rows,
                    float* const* ys) {
  const auto* first = dynamic_cast<const QuantizedLinear*>(linears[0]);
  bool shared = first && first->integer();
  for (int i = 1; shared && i < count; ++i) {
    const auto* other = dynamic_cast<const QuantizedLinear*>(linears[i]);
    shared = other && first->same_acts(*other);
  }
  if (!shared) {
    for (int i = 0; i < count; ++i) linears[i]->forward(x, rows, ys[i]);
    return;
  }
  QuantizedLinear::integer_job(linears, count, first->quantize(x, rows), rows, ys);
}

// Everything quantize_acts reads besides x: the input width and its padding, the segments,
// blocks and bits, and the clip factors.
bool QuantizedLinear::same_acts(const QuantizedLinear& other) const {
  using Clip = ActQuantParams::Clip;
  const ActQuantParams &a = act_, &b = other.act_;
  return integer() && other.integer() && w_.cols == other.w_.cols &&
         w_.cols_padded == other.w_.cols_padded && w_.block == other.w_.block &&
         a.bits == b.bits && a.segment == b.segment && a.block == b.block &&
         a.clip_min == b.clip_min && a.clip_max == b.clip_max &&
         std::equal(a.segment_clips.begin(), a.segment_clips.end(), b.segment_clips.begin(),
                    b.segment_clips.end(), [](const Clip& p, const Clip& q) {
                      return p.min == q.min && p.max == q.max;
                    });
}

const QuantizedActs& QuantizedLinear::quantize(const float* x, int rows) const {
  QuantizedActs& a = acts_;
  a.tokens = rows;
  a.cols_padded = w_.cols_padded;
  a.segment = act_.segment;
  a.block = w_.block;
  a.q.resize(static_cast<size_t>(rows) * w_.cols_padded);
  a.scale.resize(static_cast<size_t>(rows) * (w_.cols_padded / act_.segment));
  a.zero.resize(a.scale.size());
  a.sums.resize(static_cast<size_t>(rows) * w_.blocks());
  kernels().quantize_acts(x, w_.cols, rows, act_, a);
  a.centered.clear();
  if (centered_decode(rows)) {
    a.centered.resize(w_.cols_padded);
    for (int j0 = 0, s = 0; j0 < w_.cols_padded; j0 += a.segment, ++s)
      for (int j = j0; j < j0 + a.segment; ++j)
        a.centered[j] = static_cast<int8_t>(a.q[j] - a.zero[s]);
  }
  return a;
}

void QuantizedLinear::integer_job(const Linear* const* ls, int count, const QuantizedActs& a,
                                  int rows, float* const* ys) {
  // The caller checked the type: forward() passes itself, forward_shared only after its casts.
  auto layer = [&](int i) -> const QuantizedLinear& {
    return static_cast<const QuantizedLinear&>(*ls[i]);
  };
  // The layers' row tiles one after the other, as if they were one matrix of out_rows rows.
  const int rows_per_tile = tile_rows(rows);
  int64_t out_rows = 0;
  int row_tiles = 0;
  for (int i = 0; i < count; ++i) {
    out_rows += layer(i).w_.rows;
    row_tiles += tiles(layer(i).w_.rows, rows_per_tile);
  }
  // Row tiles [begin, end) of tokens [t0, t1). A run of tiles may span layers; each layer's
  // part runs as that layer's own rows would.
  auto run_tiles = [&](int t0, int t1, int begin, int end) {
    // Layer i's tiles are [offset, offset + n) of the row tiles.
    for (int i = 0, offset = 0; i < count && offset < end; ++i) {
      const QuantizedLinear& l = layer(i);
      const int n = tiles(l.w_.rows, rows_per_tile);
      const int r0 = (std::max(begin, offset) - offset) * rows_per_tile;
      const int r1 = std::min(l.w_.rows, (std::min(end, offset + n) - offset) * rows_per_tile);
      if (r0 < r1) l.integer_tiles(a, t0, t1, r0, r1, rows_per_tile, ys[i]);
      offset += n;
    }
  };
  const int workers = workers_for(rows * out_rows * a.cols_padded);
  const int span = workers == 1 ? rows : tile_tokens(a.cols_padded / a.block);
  if (workers > 1 && rows <= span) {
    // One tile of tokens (decode): each worker streams its own share of the row tiles in order
    // and then takes what is left of the others', so a faster core does not sit idle while a
    // slower one finishes an equal half.
    parallel_items(thread_pool(), row_tiles,
                   [&](int tile, int) { run_tiles(0, rows, tile, tile + 1); });
    return;
  }
  // Tasks are (token tile × chunk of row tiles), the chunks equal: each weight row is read once
  // per token tile. One task does everything when one worker would.
  const int chunks = std::min(workers, row_tiles);
  thread_pool().parallel_for(tiles(rows, span) * chunks, [&](int task, int) {
    const int t0 = task / chunks * span;
    const auto [begin, end] = tile_chunk(row_tiles, task % chunks, chunks);
    run_tiles(t0, std::min(rows, t0 + span), begin, end);
  });
}

void QuantizedLinear::integer_tiles(const QuantizedActs& a, int t0, int t1, int r0, int r1,
                                    int rows_per_tile, float* y) const {
  const KernelTable& k = kernels();
  thread_local std::vector<int32_t> dots_storage;  // per worker
  const int tile = tile_tokens(w_.blocks());
  int32_t* dots = scratch(dots_storage, static_cast<size_t>(std::min(tile, t1 - t0)) *
                                            std::min(rows_per_tile, r1 - r0) * w_.blocks());
  // A layer whose input another layer quantized (forward_shared) checks for itself.
  const bool centered = !a.centered.empty() && centered_decode(a.tokens);
  for (int t = t0; t < t1; t += tile) {
    const int nt = std::min(tile, t1 - t);
    for (int r = r0; r < r1; r += rows_per_tile) {
      const int r_end = std::min(r1, r + rows_per_tile);
      if (centered)
        k.centered_dots(w_, a.centered.data(), r, r_end, dots);
      else
        k.block_dots(w_, &a.q[static_cast<size_t>(t) * w_.cols_padded], w_.cols_padded, nt, r,
                     r_end, dots);
      linear_epilogue(w_, a, t, nt, r, r_end, dots, centered,
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
