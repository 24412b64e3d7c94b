#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/vector_lanes.h"

namespace rotor {

namespace {

// The epilogue's vectorized loops multiply int32s, which the x86-64 baseline (SSE2) has no
// instruction for (each takes five); an AVX2 copy, picked at load time where the CPU has it,
// runs the same operations in the same order (no FMA: -ffp-contract=off), so the same floats.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ROTOR_EPILOGUE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ROTOR_EPILOGUE_CLONES
#endif

// The exact block dot Σ (q − z_x)·(w' − z_w) over n columns is
//   dot − z_w·c − z_x·Σw',  c = Σq − n·z_x,
// and each of its terms is at most n·255·2^(bits−1) in magnitude (zero points are codes, which
// the loader checks). Where three such terms fit int32 the sums are taken in int32, which the
// compiler vectorizes, else in int64: the same integers either way.
bool fits_int32(const PackedMatrix& w) {
  return 3.0 * w.block * 255 * (1 << (w.bits - 1)) < 2147483648.0;
}

template <class Int>
inline Int exact_dot(int32_t dot, int32_t zw, Int c, int32_t zx, int32_t wsum) {
  return static_cast<Int>(dot) - static_cast<Int>(zw) * c - static_cast<Int>(zx) * wsum;
}

// The rows of one token when each has one block (per-channel weights, whole-row activations).
template <class Int>
void one_block_rows(const int32_t* d, const float* sw, const int32_t* zw, const int32_t* wsum,
                    float sx, int32_t zx, Int c, int rows, float* y) {
  for (int r = 0; r < rows; ++r)
    y[r] = 0.0f + (sw[r] * sx) * static_cast<float>(exact_dot<Int>(d[r], zw[r], c, zx, wsum[r]));
}

// Per block of one token: its activation scale and zero point, and c = Σq − n·z_x.
struct TokenBlocks {
  std::vector<float> sx;
  std::vector<int32_t> zx;
  std::vector<int64_t> c;
};

// Eight lanes of int32 or float (vector_lanes.h).
constexpr int kLanes = 8;
using Ints = Ints8;
using Floats = Floats8;

// Rows of several blocks, int32-exact: per-channel weights with o_proj's per-head activation
// segments (kGroupScales false: y = s_w·Σ_b s_x[b]·e_b), or weights in groups of one or more
// blocks (true: y = Σ_b (s_w[g(b)]·s_x[b])·e_b, the groups' scales and zero points first
// copied out per block where a group spans several). kCentered: the dots are centered_dots',
// whose z_x·Σw' is in already, so the weights' block sums are not read (e_b is the same).
// Each row sums its blocks eight at a time in vector lanes, the remainder in order on its own,
// then adds the lanes in a fixed tree (written on vector types, so the partial sums stay in
// registers rather than going through memory per row); inlined into linear_epilogue's clones.
template <bool kGroupScales, bool kCentered>
__attribute__((always_inline)) inline void block_rows(const PackedMatrix& w, const TokenBlocks& k,
                                                      const int* group_of, int r0, int r1,
                                                      const int32_t* d, float* y) {
  const int nb = w.blocks(), ng = w.groups();
  thread_local std::vector<int32_t> c, block_zeros;
  thread_local std::vector<float> block_scales;
  c.assign(k.c.begin(), k.c.end());
  const bool copied = kGroupScales && ng != nb;
  if (copied) {
    // All the rows' copies first: read back right after their scalar stores, the vector loads
    // below would wait for them (a load cannot take its bytes from several pending stores).
    const size_t n = static_cast<size_t>(r1 - r0) * nb;
    block_zeros.resize(n);
    block_scales.resize(n);
    const size_t first = static_cast<size_t>(r0) * ng;
    for (size_t i = 0, g = first; i < n; g += ng)
      for (int b = 0; b < nb; ++b, ++i) {
        block_scales[i] = w.scales[g + group_of[b]];
        block_zeros[i] = w.zeros[g + group_of[b]];
      }
  }
  const int whole = nb / kLanes * kLanes;
  for (int r = r0; r < r1; ++r, d += nb) {
    const int32_t* wsum = kCentered ? nullptr : w.sums + static_cast<size_t>(r) * nb;
    const size_t copy = static_cast<size_t>(r - r0) * nb;
    const float* sw = copied ? &block_scales[copy] : w.scales + static_cast<size_t>(r) * ng;
    const int32_t* zw = copied ? &block_zeros[copy] : w.zeros + static_cast<size_t>(r) * ng;
    Floats acc = {};
    for (int b = 0; b < whole; b += kLanes) {
      Ints dot, z = Ints{} + zw[0], cb, zx, ws = {};
      Floats sx, scale;
      load_lanes(dot, d + b);
      if (kGroupScales) load_lanes(z, zw + b);
      load_lanes(cb, c.data() + b);
      load_lanes(zx, k.zx.data() + b);
      if (!kCentered) load_lanes(ws, wsum + b);
      load_lanes(sx, k.sx.data() + b);
      if (kGroupScales) {
        load_lanes(scale, sw + b);
        scale *= sx;
      } else {
        scale = sx;
      }
      acc += scale * __builtin_convertvector(dot - z * cb - zx * ws, Floats);
    }
    float rest = 0.0f;
    for (int b = whole; b < nb; ++b) {
      const int g = kGroupScales ? b : 0;
      const int32_t ws = kCentered ? 0 : wsum[b];
      const float e = static_cast<float>(exact_dot<int32_t>(d[b], zw[g], c[b], k.zx[b], ws));
      rest += (kGroupScales ? sw[b] * k.sx[b] : k.sx[b]) * e;
    }
    static_assert(kLanes == 8, "the reduction below adds eight lanes");
    const float sum =
        (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))) + rest;
    y[r] = kGroupScales ? sum : sw[0] * sum;
  }
}

// Sums too wide for int32 (8-bit weights with blocks of over 21,900 columns, several per row):
// rows [r, r + R) at a time, so that their R chains of dependent float additions overlap; each
// row sums its blocks in order.
template <int R>
void wide_block_rows(const PackedMatrix& w, const TokenBlocks& k, const int* group_of,
                     bool centered, int r, const int32_t* d, float* y) {
  const int nb = w.blocks(), ng = w.groups();
  float acc[R] = {};
  for (int b = 0; b < nb; ++b) {
    const int g = group_of[b];
    for (int i = 0; i < R; ++i) {
      const size_t row = static_cast<size_t>(r + i);
      const int32_t ws = centered ? 0 : w.sums[row * nb + b];
      acc[i] += (w.scales[row * ng + g] * k.sx[b]) *
                static_cast<float>(exact_dot<int64_t>(d[i * nb + b], w.zeros[row * ng + g], k.c[b],
                                                      k.zx[b], ws));
    }
  }
  for (int i = 0; i < R; ++i) y[r + i] = acc[i];
}

}  // namespace

ROTOR_EPILOGUE_CLONES void linear_epilogue(const PackedMatrix& w, const QuantizedActs& a, int t0,
                                           int n_tokens, int r0, int r1, const int32_t* dots,
                                           bool centered, float* y, size_t y_stride) {
  const int nb = w.blocks(), rows = r1 - r0;
  const int nseg = a.cols_padded / a.segment;
  const int64_t n = w.block;
  const bool int32 = fits_int32(w);
  // Each block's weight group, looked up rather than divided out per (row, block). Nested
  // loops rather than a division per block: integer division is slow, and this runs per call.
  thread_local std::vector<int> group_of;
  group_of.resize(nb);
  const int group_blocks = w.group / w.block, segment_blocks = a.segment / w.block;
  for (int g = 0, b = 0; b < nb; ++g)
    for (int j = 0; j < group_blocks; ++j) group_of[b++] = g;
  thread_local TokenBlocks k;
  k.sx.resize(nb);
  k.zx.resize(nb);
  k.c.resize(nb);
  for (int t = 0; t < n_tokens; ++t) {
    const int tok = t0 + t;
    const float* sx = &a.scale[static_cast<size_t>(tok) * nseg];
    const int32_t* zx = &a.zero[static_cast<size_t>(tok) * nseg];
    const int32_t* qsum = &a.sums[static_cast<size_t>(tok) * nb];
    const int32_t* d = dots + static_cast<size_t>(t) * rows * nb;
    float* yt = y + t * y_stride;
    if (nb == 1) {
      const int64_t c = qsum[0] - n * zx[0];
      const int32_t zx_ws = centered ? 0 : zx[0];  // centered: z_x·Σw' is in the dots
      if (int32)
        one_block_rows<int32_t>(d, w.scales + r0, w.zeros + r0, w.sums + r0, sx[0], zx_ws,
                                static_cast<int32_t>(c), rows, yt + r0);
      else
        one_block_rows<int64_t>(d, w.scales + r0, w.zeros + r0, w.sums + r0, sx[0], zx_ws, c,
                                rows, yt + r0);
      continue;
    }
    for (int s = 0, b = 0; b < nb; ++s)
      for (int j = 0; j < segment_blocks; ++j, ++b) {
        k.sx[b] = sx[s];
        k.zx[b] = zx[s];
        k.c[b] = qsum[b] - n * zx[s];
      }
    if (int32) {
      const bool grouped = w.groups() > 1;
      if (centered && grouped)
        block_rows<true, true>(w, k, group_of.data(), r0, r1, d, yt);
      else if (centered)
        block_rows<false, true>(w, k, group_of.data(), r0, r1, d, yt);
      else if (grouped)
        block_rows<true, false>(w, k, group_of.data(), r0, r1, d, yt);
      else
        block_rows<false, false>(w, k, group_of.data(), r0, r1, d, yt);
      continue;
    }
    int r = r0;
    for (; r + 4 <= r1; r += 4)
      wide_block_rows<4>(w, k, group_of.data(), centered, r, d + (r - r0) * nb, yt);
    for (; r < r1; ++r)
      wide_block_rows<1>(w, k, group_of.data(), centered, r, d + (r - r0) * nb, yt);
  }
}

}  // namespace rotor
