// Every ISA's kernels against the scalar reference, on random and adversarial inputs: exact
// for the integer parts (block dots, activation codes), within a float tolerance for attention
// and SwiGLU.
// Built natively and, for NEON, cross-built and run under qemu (see the Makefile).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>

#include "engine/format/rotor_format.h"
#include "engine/import/dtype.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/kv_kernels.h"
#include "engine/kernels/pack.h"
#include "engine/kernels/v_weights.h"

using namespace rotor;
namespace fmt = rotor::format;

namespace {

struct RandomMatrix {
  std::vector<int8_t> signed_codes;
  std::vector<uint8_t> packed;
  std::vector<float> scales;
  std::vector<int32_t> zeros, sums;
  PackedMatrix m;

  // mode 0: random codes; 1: all at the minimum; 2: all at the maximum; 3: all equal (0).
  RandomMatrix(int rows, int cols_padded, int bits, int group, int block, int mode,
               std::mt19937& rng) {
    const int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
    std::uniform_int_distribution<int> code(lo, hi);
    signed_codes.resize(static_cast<size_t>(rows) * cols_padded);
    for (auto& c : signed_codes)
      c = static_cast<int8_t>(mode == 0 ? code(rng) : mode == 1 ? lo : mode == 2 ? hi : 0);
    packed.resize(rows * packed_row_bytes(cols_padded, bits));
    pack_weight_codes(signed_codes.data(), rows, cols_padded, bits, packed.data());
    const int groups = cols_padded / group;
    scales.resize(static_cast<size_t>(rows) * groups);
    zeros.resize(scales.size());
    std::uniform_real_distribution<float> sd(0.001f, 0.1f);
    for (size_t i = 0; i < scales.size(); ++i) {
      scales[i] = sd(rng);
      zeros[i] = code(rng);
    }
    sums.resize(static_cast<size_t>(rows) * (cols_padded / block));
    weight_block_sums(signed_codes.data(), rows, cols_padded, block, sums.data());
    m.rows = rows;
    m.cols = cols_padded;
    m.cols_padded = cols_padded;
    m.bits = bits;
    m.group = group;
    m.block = block;
    m.codes = packed.data();
    m.scales = scales.data();
    m.zeros = zeros.data();
    m.sums = sums.data();
  }
};

std::vector<uint8_t> random_acts(int tokens, int cols, int bits, int mode, std::mt19937& rng) {
  std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
  std::vector<uint8_t> q(static_cast<size_t>(tokens) * cols);
  for (auto& v : q) v = static_cast<uint8_t>(mode == 0 ? code(rng) : mode == 1 ? 0 : (1 << bits) - 1);
  return q;
}

std::vector<Isa> isas_under_test() {
  std::vector<Isa> isas = supported_isas();
  MESSAGE("kernels under test: " << [&] {
    std::string s;
    for (Isa i : isas) s += std::string(isa_name(i)) + " ";
    return s;
  }());
  return isas;
}

// Every table kernels_for may return on this CPU: per ISA, for AVX2 the plain one and (on CPUs
// with AVX-VNNI) the VNNI one, and for AVX-512 both ways of walking decode rows (dispatch picks
// one by CPU vendor).
std::vector<const KernelTable*> tables_under_test(const std::vector<Isa>& isas) {
  std::vector<const KernelTable*> tables;
  for (Isa isa : isas) {
#if defined(__x86_64__)
    if (isa == Isa::kAvx2) {
      tables.push_back(&kAvx2Kernels);
      if (&kernels_for(isa) != &kAvx2Kernels) tables.push_back(&kernels_for(isa));
      continue;
    }
    if (isa == Isa::kAvx512) {
      tables.push_back(&kAvx512Kernels);
      tables.push_back(&kAvx512RowByRowKernels);
      continue;
    }
#endif
    tables.push_back(&kernels_for(isa));
  }
  return tables;
}

std::string table_label(const KernelTable* t) {
#if defined(__x86_64__)
  if (t == &kAvx512RowByRowKernels) return std::string(t->name) + " (decode rows one by one)";
#endif
  return t->name;
}

}  // namespace

TEST_CASE("kernels: block dots match the scalar reference exactly") {
  std::mt19937 rng(1234);
  const auto tables = tables_under_test(isas_under_test());
  struct Shape { int rows, cols, group, block; };
  // Also: blocks of 32 and odd multiples of it, block counts that are not multiples of 4,
  // rows as wide as a model's, blocks of 4 and 48, with every remainder of the SIMD tiles'
  // rows and tokens; blocks of one to four 64-column chunks in 8-row tiles and their
  // remainders (10, 11, 4 and 4 blocks, rows past a multiple of 8).
  const Shape shapes[] = {{1, 64, 64, 64},    {7, 64, 32, 32},    {33, 192, 192, 192},
                          {16, 192, 64, 64},  {5, 256, 128, 128}, {64, 128, 128, 8},
                          {3, 128, 32, 16},   {17, 512, 512, 128}, {40, 1024, 1024, 1024},
                          {9, 448, 448, 32},  {6, 320, 64, 64},   {5, 384, 96, 96},
                          {10, 4096, 4096, 4096}, {6, 4096, 128, 128}, {5, 4096, 4096, 32},
                          {4, 64, 64, 4},     {3, 192, 192, 48},  {13, 512, 512, 512},
                          {172, 64, 64, 64},  {48, 192, 192, 192}, {35, 256, 256, 256},
                          {7, 192, 192, 8},   {21, 640, 64, 64},  {19, 1408, 128, 128},
                          {18, 768, 192, 192}, {25, 1024, 256, 256}};
  for (const Shape& s : shapes)
    for (int bits : {4, 8})
      for (int act_bits : {4, 8})
        for (int mode = 0; mode < 4; ++mode)
          for (int tokens : {1, 2, 3, 4, 5, 7}) {
            CAPTURE(s.rows); CAPTURE(s.cols); CAPTURE(s.group); CAPTURE(s.block);
            CAPTURE(bits); CAPTURE(act_bits); CAPTURE(mode); CAPTURE(tokens);
            RandomMatrix w(s.rows, s.cols, bits, s.group, s.block, mode, rng);
            // Token rows further apart than their width, at unaligned offsets, for even counts.
            const int q_stride = s.cols + (tokens % 2 ? 0 : 24);
            auto q = random_acts(tokens, q_stride, act_bits, mode % 3, rng);
            const size_t n = static_cast<size_t>(tokens) * s.rows * w.m.blocks();
            std::vector<int32_t> ref(n), got(n);
            kScalarKernels.block_dots(w.m, q.data(), q_stride, tokens, 0, s.rows, ref.data());
            for (const KernelTable* table : tables) {
              CAPTURE(table_label(table));
              std::fill(got.begin(), got.end(), -1);
              table->block_dots(w.m, q.data(), q_stride, tokens, 0, s.rows, got.data());
              CHECK(got == ref);
              // A sub-range of rows, as the thread split uses.
              if (s.rows > 2) {
                const int r0 = 1, r1 = s.rows - 1;
                std::vector<int32_t> part(static_cast<size_t>(tokens) * (r1 - r0) * w.m.blocks());
                table->block_dots(w.m, q.data(), q_stride, tokens, r0, r1, part.data());
                std::vector<int32_t> want(part.size());
                kScalarKernels.block_dots(w.m, q.data(), q_stride, tokens, r0, r1, want.data());
                CHECK(part == want);
              }
            }
          }
}

TEST_CASE("kernels: centered decode dots are block dots less z_x times the weight sums") {
  // centered_dots (where a table has it) and its scalar reference against block_dots of the
  // codes q and the block sums: Σ (q − z_x)·w' = Σ q·w' − z_x·Σw', exactly; blocks of one to
  // three chunks, 20 blocks (not a multiple of the 16 reduced together), rows around the
  // register tiles, per-channel and grouped weights; random codes and every extreme of w', q
  // and z_x.
  std::mt19937 rng(4321);
  auto tables = tables_under_test(isas_under_test());
  tables.erase(std::remove_if(tables.begin(), tables.end(),
                              [](const KernelTable* t) { return !t->centered_dots; }),
               tables.end());
  struct Shape { int rows, cols, group, block; };
  const Shape shapes[] = {{1, 128, 128, 64},  {7, 512, 512, 64},   {17, 4096, 4096, 128},
                          {16, 1280, 1280, 64}, {5, 576, 192, 192}, {33, 2048, 128, 64},
                          {3, 2048, 2048, 1024}};
  for (const Shape& s : shapes)
    for (int mode = 0; mode < 4; ++mode) {
      CAPTURE(s.rows); CAPTURE(s.cols); CAPTURE(s.group); CAPTURE(s.block); CAPTURE(mode);
      RandomMatrix w(s.rows, s.cols, 4, s.group, s.block, mode, rng);
      const int nb = s.cols / s.block;
      auto q = random_acts(1, s.cols, 4, mode % 3, rng);
      std::uniform_int_distribution<int> zero(0, 15);
      std::vector<int32_t> zx(nb);
      for (int32_t& z : zx) z = mode == 0 ? zero(rng) : mode == 1 ? 15 : 0;
      std::vector<int8_t> a(s.cols);
      for (int j = 0; j < s.cols; ++j) a[j] = static_cast<int8_t>(q[j] - zx[j / s.block]);
      std::vector<int32_t> want(static_cast<size_t>(s.rows) * nb);
      kScalarKernels.block_dots(w.m, q.data(), s.cols, 1, 0, s.rows, want.data());
      for (int r = 0; r < s.rows; ++r)
        for (int b = 0; b < nb; ++b) want[r * nb + b] -= zx[b] * w.sums[r * nb + b];
      for (const KernelTable* table : tables) {
        CAPTURE(table_label(table));
        std::vector<int32_t> got(want.size(), -1);
        table->centered_dots(w.m, a.data(), 0, s.rows, got.data());
        CHECK(got == want);
        if (s.rows > 2) {  // a sub-range of rows, as the thread split uses
          std::vector<int32_t> part(static_cast<size_t>(s.rows - 2) * nb, -1);
          table->centered_dots(w.m, a.data(), 1, s.rows - 1, part.data());
          CHECK(std::equal(part.begin(), part.end(), want.begin() + nb));
        }
      }
    }
}

TEST_CASE("kernels: the epilogue over centered dots gives the floats of block dots") {
  // One token, 4-bit weights and activations in per-head blocks: per channel, in groups of
  // one block and of two; 8, 11, 20 and 32 blocks (past and around the epilogue's 8 lanes);
  // random and extreme codes and zero points.
  std::mt19937 rng(90);
  struct Layout { int rows, cols, group, block; };
  const Layout layouts[] = {{13, 512, 512, 64},  {9, 1408, 1408, 128}, {7, 1280, 1280, 64},
                            {11, 2048, 2048, 64}, {5, 1280, 64, 64},    {6, 1024, 128, 64}};
  for (const Layout& s : layouts)
    for (int mode = 0; mode < 3; ++mode) {
      CAPTURE(s.cols); CAPTURE(s.group); CAPTURE(s.block); CAPTURE(mode);
      const int nb = s.cols / s.block;
      RandomMatrix w(s.rows, s.cols, 4, s.group, s.block, mode, rng);
      QuantizedActs a;
      a.tokens = 1;
      a.cols_padded = s.cols;
      a.segment = s.block;
      a.block = s.block;
      a.q = random_acts(1, s.cols, 4, mode, rng);
      std::uniform_real_distribution<float> scale(0.001f, 0.1f);
      std::uniform_int_distribution<int> zero(0, 15);
      for (int b = 0; b < nb; ++b) {
        a.scale.push_back(scale(rng));
        a.zero.push_back(mode == 0 ? zero(rng) : mode == 1 ? 15 : 0);
      }
      a.sums.assign(nb, 0);
      a.centered.resize(s.cols);
      for (int j = 0; j < s.cols; ++j) {
        a.sums[j / s.block] += a.q[j];
        a.centered[j] = static_cast<int8_t>(a.q[j] - a.zero[j / s.block]);
      }
      std::vector<int32_t> dots(static_cast<size_t>(s.rows) * nb), centered(dots.size());
      kScalarKernels.block_dots(w.m, a.q.data(), s.cols, 1, 0, s.rows, dots.data());
      centered_dots_scalar(w.m, a.centered.data(), 0, s.rows, centered.data());
      std::vector<float> want(s.rows), got(s.rows);
      linear_epilogue(w.m, a, 0, 1, 0, s.rows, dots.data(), false, want.data(), s.rows);
      linear_epilogue(w.m, a, 0, 1, 0, s.rows, centered.data(), true, got.data(), s.rows);
      CHECK(got == want);
    }
}

TEST_CASE("kernels: prefill block dots match the scalar reference exactly") {
  // Token and row counts around the 16 × 16 tiles of the AMX path (where the CPU has it) and
  // the vector kernels' register tiles: whole tiles, pairs of tiles, and every kind of
  // remainder, with blocks of one 64-column step, several, and the whole row.
  std::mt19937 rng(4321);
  const auto tables = tables_under_test(isas_under_test());
  struct Shape { int rows, cols, group, block; };
  const Shape shapes[] = {{16, 64, 64, 64},     {32, 256, 128, 128}, {47, 192, 192, 192},
                          {64, 512, 512, 512},  {50, 320, 64, 64},   {33, 384, 96, 96},
                          {17, 1024, 1024, 32}};
  for (const Shape& s : shapes)
    for (int bits : {4, 8})
      for (int mode = 0; mode < 4; ++mode)
        for (int tokens : {16, 17, 32, 45, 48, 64}) {
          CAPTURE(s.rows); CAPTURE(s.cols); CAPTURE(s.block); CAPTURE(bits); CAPTURE(mode);
          CAPTURE(tokens);
          RandomMatrix w(s.rows, s.cols, bits, s.group, s.block, mode, rng);
          const int q_stride = s.cols + (tokens % 2 ? 0 : 40);
          auto q = random_acts(tokens, q_stride, 8, mode % 3, rng);
          for (int r0 : {0, 1})
            for (int r1 : {s.rows, s.rows - 1}) {
              CAPTURE(r0); CAPTURE(r1);
              const size_t n = static_cast<size_t>(tokens) * (r1 - r0) * w.m.blocks();
              std::vector<int32_t> ref(n), got(n);
              kScalarKernels.block_dots(w.m, q.data(), q_stride, tokens, r0, r1, ref.data());
              for (const KernelTable* table : tables) {
                CAPTURE(table_label(table));
                std::fill(got.begin(), got.end(), -1);
                table->block_dots(w.m, q.data(), q_stride, tokens, r0, r1, got.data());
                CHECK(got == ref);
              }
            }
        }
}

TEST_CASE("kernels: activation quantization matches the scalar reference exactly") {
  std::mt19937 rng(99);
  const auto isas = isas_under_test();
  struct Shape { int cols, cols_padded, segment, block; };
  // Also: segments past the logical columns (padding only) and a partly filled one.
  const Shape shapes[] = {{64, 64, 64, 64},   {172, 192, 192, 64}, {64, 64, 8, 8},
                          {1000, 1024, 1024, 128}, {4096, 4096, 128, 128}, {5, 64, 64, 32},
                          {100, 192, 48, 48}, {20, 64, 16, 16}};
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  // Per-segment clips, adversarial: the extremes of (0, 1], one ulp below 1, tiny factors that
  // squeeze the range to almost nothing, and min and max far apart.
  const float extreme[] = {1.0f, std::nextafter(1.0f, 0.0f), 0.55f, 0.05f, 1e-3f, 1e-6f};
  for (const Shape& s : shapes)
    for (int bits : {4, 8})
      for (int mode = 0; mode < 5; ++mode)
        for (int clips = 0; clips < 3; ++clips) {  // shared, per-segment random, adversarial
          CAPTURE(s.cols); CAPTURE(s.segment); CAPTURE(bits); CAPTURE(mode); CAPTURE(clips);
          const int tokens = 3, nseg = s.cols_padded / s.segment;
          std::vector<float> x(static_cast<size_t>(tokens) * s.cols);
          for (size_t i = 0; i < x.size(); ++i) {
            switch (mode) {
              case 0: x[i] = normal(rng); break;                          // random
              case 1: x[i] = 0.75f; break;                                // all equal
              case 2: x[i] = (i % 2 ? 1.0f : -1.0f) * 3.0e4f; break;      // ± large
              case 3: x[i] = normal(rng) * (i % 97 == 0 ? 500.0f : 1.0f); break;  // outliers
              default: x[i] = 0.0f;                                       // all zero
            }
          }
          ActQuantParams p{bits, s.segment, s.block, 0.9f, 0.95f};
          for (int g = 0; clips > 0 && g < nseg; ++g) {
            const float lo = std::max(unit(rng), 0.01f), hi = std::max(unit(rng), 0.01f);
            p.segment_clips.push_back(clips == 1 ? ActQuantParams::Clip{lo, hi}
                                                 : ActQuantParams::Clip{extreme[g % 6],
                                                                        extreme[(g * 5 + 3) % 6]});
          }
          auto make = [&] {
            QuantizedActs a;
            a.tokens = tokens;
            a.cols_padded = s.cols_padded;
            a.segment = s.segment;
            a.block = s.block;
            a.q.assign(static_cast<size_t>(tokens) * s.cols_padded, 0xAA);
            a.scale.assign(static_cast<size_t>(tokens) * nseg, -1.0f);
            a.zero.assign(a.scale.size(), -1);
            a.sums.assign(static_cast<size_t>(tokens) * (s.cols_padded / s.block), -1);
            return a;
          };
          QuantizedActs ref = make();
          kScalarKernels.quantize_acts(x.data(), s.cols, tokens, p, ref);
          for (int code : ref.q) CHECK((code >= 0 && code < (1 << bits)));
          // The reference gives each segment what the shared pair equal to its clips gives it.
          for (int g = 0; clips > 0 && g < nseg; ++g) {
            const ActQuantParams::Clip c = p.segment_clips[g];
            QuantizedActs shared = make();
            kScalarKernels.quantize_acts(x.data(), s.cols, tokens,
                                         {bits, s.segment, s.block, c.min, c.max}, shared);
            for (int t = 0; t < tokens; ++t) {
              const size_t k = static_cast<size_t>(t) * nseg + g;
              CHECK(ref.scale[k] == shared.scale[k]);
              CHECK(ref.zero[k] == shared.zero[k]);
              const auto q = ref.q.begin() + t * s.cols_padded + g * s.segment;
              CHECK(std::equal(q, q + s.segment,
                               shared.q.begin() + t * s.cols_padded + g * s.segment));
            }
          }
          for (Isa isa : isas) {
            CAPTURE(isa_name(isa));
            QuantizedActs got = make();
            kernels_for(isa).quantize_acts(x.data(), s.cols, tokens, p, got);
            CHECK(got.q == ref.q);
            CHECK(got.scale == ref.scale);
            CHECK(got.zero == ref.zero);
            CHECK(got.sums == ref.sums);
          }
        }
}

TEST_CASE("kernels: the scalar quantized dot product approximates the float one") {
  // The identity of METHODS.md §1, end to end through quantize_acts, block_dots, epilogue.
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int rows = 8, cols = 128;
  RandomMatrix w(rows, cols, 8, 32, 32, 0, rng);
  std::vector<float> x(cols);
  for (float& v : x) v = normal(rng);
  QuantizedActs a;
  a.tokens = 1;
  a.cols_padded = cols;
  a.segment = cols;
  a.block = 32;
  a.q.resize(cols);
  a.scale.resize(1);
  a.zero.resize(1);
  a.sums.resize(cols / 32);
  quantize_acts_scalar(x.data(), cols, 1, {8, 0, 0, 1.0f, 1.0f}, a);
  std::vector<int32_t> dots(rows * 4);
  kScalarKernels.block_dots(w.m, a.q.data(), cols, 1, 0, rows, dots.data());
  std::vector<float> y(rows);
  linear_epilogue(w.m, a, 0, 1, 0, rows, dots.data(), false, y.data(), rows);
  for (int r = 0; r < rows; ++r) {
    double exact = 0.0, norm = 0.0;
    for (int j = 0; j < cols; ++j) {
      const int g = j / 32;
      const double wv = w.scales[r * 4 + g] * (w.signed_codes[r * cols + j] - w.zeros[r * 4 + g]);
      exact += wv * x[j];
      norm += std::fabs(wv * x[j]);
    }
    CAPTURE(r);
    CHECK(std::fabs(y[r] - exact) <= 0.01 * norm);  // 8-bit activations: ≤ 1% of Σ|w·x|
  }
}

namespace {

// x rounded to f16 in place, and those f16 values: KvView holds the scales and minimums so, and
// the references here read the same values from x.
std::vector<uint16_t> round_to_f16(std::vector<float>& x) {
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    h[i] = f32_to_f16(x[i]);
    x[i] = f16_to_f32(h[i]);
  }
  return h;
}

// How far the byte dots' rounding of the V weights (v_weights.h) may move each output channel
// of query head q over n_pos positions: Σ_t step_t / 2 · code_t / Σ e_t, with the weights
// e_t·v_scale_t from the scalar K scores.
std::vector<double> v_rounding_bound(const KvView& kv, const float* q, int n_pos) {
  std::vector<float> scores(n_pos), w(n_pos), steps(v_chunks(n_pos));
  if (kv.k_group)
    kivi_scores_scalar(kv, q, 1, n_pos, scores.data());
  else
    token_scores_scalar(kv, q, 1, n_pos, scores.data());
  const float top = *std::max_element(scores.begin(), scores.end());
  double sum = 0;
  for (int t = 0; t < n_pos; ++t) {
    const float e = std::exp(scores[t] - top);
    sum += e;
    w[t] = e * f16_to_f32(kv.v_scale[t]);
  }
  for (int c = 0; c < static_cast<int>(steps.size()); ++c)
    steps[c] = v_step(*std::max_element(w.begin() + c * kVChunk,
                                        w.begin() + std::min(n_pos, (c + 1) * kVChunk)));
  std::vector<double> bound(kv.head_dim, 0.0);
  for (int t = 0; t < n_pos; ++t)
    for (int i = 0; i < kv.head_dim; ++i)
      bound[i] += steps[t / kVChunk] / 2 *
                  row_code(kv.v_codes + static_cast<size_t>(t) * kv.head_bytes(), kv.bits, i);
  for (double& b : bound) b /= sum;
  return bound;
}

// attend of n_q heads by kernels `k` against the scalar reference run one head at a time, so
// the grouping of heads is checked too: within float rounding (sums in another order) and, for
// the byte dots, the V weights' rounding.
void check_attend_heads(const KernelTable& k, const KvView& kv, const std::vector<float>& q,
                        int n_q, int n_pos) {
  const int hd = kv.head_dim;
  std::vector<float> sref(n_pos), oref(hd), sgot(static_cast<size_t>(n_q) * n_pos),
      ogot(static_cast<size_t>(n_q) * hd);
  k.attend(kv, q.data(), n_q, n_pos, sgot.data(), ogot.data());
  for (int h = 0; h < n_q; ++h) {
    CAPTURE(h);
    attend_scalar(kv, q.data() + h * hd, 1, n_pos, sref.data(), oref.data());
    const std::vector<double> bound = v_rounding_bound(kv, q.data() + h * hd, n_pos);
    for (int i = 0; i < hd; ++i)
      CHECK(std::fabs(ogot[h * hd + i] - oref[i]) <= 1e-4f * (1 + std::fabs(oref[i])) + bound[i]);
  }
}

}  // namespace

TEST_CASE("kernels: attention over a quantized cache matches the scalar reference") {
  std::mt19937 rng(77);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const auto isas = isas_under_test();
  // Head sizes below 16 bytes of codes (2, 4, 8) pack several positions into one vector.
  for (int hd : {2, 4, 8, 12, 16, 48, 64, 128, 256})
    for (int bits : {4, 8})
      for (int n_pos : {1, 3, 17, 33, 300})
        for (int peaked : {0, 1}) {  // 1: K scales 100× larger, so most weights underflow to 0
          CAPTURE(hd); CAPTURE(bits); CAPTURE(n_pos); CAPTURE(peaked);
          const size_t row = static_cast<size_t>(hd) * bits / 8;
          std::uniform_int_distribution<int> byte(0, 255);
          std::vector<uint8_t> k(row * n_pos), v(row * n_pos);
          for (auto& b : k) b = static_cast<uint8_t>(byte(rng));
          for (auto& b : v) b = static_cast<uint8_t>(byte(rng));
          std::vector<float> ks(n_pos), km(n_pos), vs(n_pos), vm(n_pos), q(hd);
          for (int t = 0; t < n_pos; ++t) {
            ks[t] = (peaked ? 100.0f : 1.0f) * (0.01f + std::fabs(normal(rng)) * 0.05f);
            vs[t] = 0.01f + std::fabs(normal(rng)) * 0.05f;
            km[t] = normal(rng);
            vm[t] = normal(rng);
          }
          // 1 to 7 query heads share the KV head: every chunking of heads (4, 2, 1) occurs.
          const int n_q = 1 + (hd + n_pos + peaked) % 7;
          CAPTURE(n_q);
          q.resize(static_cast<size_t>(n_q) * hd);
          for (float& f : q) f = normal(rng);
          const auto ks16 = round_to_f16(ks), km16 = round_to_f16(km), vs16 = round_to_f16(vs),
                     vm16 = round_to_f16(vm);
          KvView kv{hd, bits, k.data(), ks16.data(), km16.data(), v.data(), vs16.data(),
                    vm16.data()};
          for (Isa isa : isas) {
            CAPTURE(isa_name(isa));
            check_attend_heads(kernels_for(isa), kv, q, n_q, n_pos);
          }
        }
}

TEST_CASE("kernels: the V weights round to 14 bits per chunk of positions") {
  std::mt19937 rng(78);
  std::exponential_distribution<float> weight(1.0f);
  for (int n : {1, 3, 255, 256, 257, 600})
    for (int mode : {0, 1, 2}) {  // 1: the first chunk all 0; 2: weights spanning 1e-30 to 1
      CAPTURE(n); CAPTURE(mode);
      std::vector<float> w(n), steps(v_chunks(n));
      for (int t = 0; t < n; ++t) {
        w[t] = weight(rng);
        if (mode == 1 && t < kVChunk) w[t] = 0.0f;
        if (mode == 2) w[t] = std::pow(10.0f, -30.0f * static_cast<float>(t % 7) / 6);
      }
      for (int c = 0; c * kVChunk < n; ++c) {
        const float largest =
            *std::max_element(w.begin() + c * kVChunk, w.begin() + std::min(n, (c + 1) * kVChunk));
        steps[c] = v_step(largest);
        CHECK(steps[c] == (largest > 0 ? largest / 16383.0f : 0.0f));
      }
      const int padded = (n + 3) / 4 * 4;
      std::vector<int8_t> hi(padded, 99), lo(padded, 99);
      split_v_weights(w.data(), n, steps.data(), hi.data(), lo.data());
      for (int t = 0; t < n; ++t) {
        CAPTURE(t);
        const float step = steps[t / kVChunk];
        CHECK(hi[t] >= 0);
        CHECK(hi[t] <= 127);
        CHECK(lo[t] >= 0);
        CHECK(lo[t] <= 127);
        // Within half a step, with the float rounding of w / step.
        const double code = 128 * hi[t] + lo[t];
        CHECK(std::fabs(code * step - w[t]) <= step * (0.5 + 1e-3));
      }
      for (int t = n; t < padded; ++t) CHECK(hi[t] + lo[t] == 0);
    }
}

TEST_CASE("kernels: attention stays within the V weights' rounding of exact sums") {
  std::mt19937 rng(80);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int hd : {8, 64, 128})
    for (int bits : {4, 8})
      for (int n_pos : {5, 300, 1100}) {
        CAPTURE(hd); CAPTURE(bits); CAPTURE(n_pos);
        const size_t row = static_cast<size_t>(hd) * bits / 8;
        std::vector<uint8_t> k(row * n_pos), v(row * n_pos);
        for (auto& b : k) b = static_cast<uint8_t>(byte(rng));
        for (auto& b : v) b = static_cast<uint8_t>(byte(rng));
        std::vector<float> ks(n_pos), km(n_pos), vs(n_pos), vm(n_pos), q(hd);
        for (int t = 0; t < n_pos; ++t) {
          ks[t] = 0.01f + std::fabs(normal(rng)) * 0.05f;
          vs[t] = 0.01f + std::fabs(normal(rng)) * 0.05f;
          km[t] = normal(rng);
          vm[t] = normal(rng);
        }
        for (float& f : q) f = normal(rng);
        const auto ks16 = round_to_f16(ks), km16 = round_to_f16(km), vs16 = round_to_f16(vs),
                   vm16 = round_to_f16(vm);
        const KvView kv{hd, bits, k.data(), ks16.data(), km16.data(), v.data(), vs16.data(),
                        vm16.data()};
        // The exact sums over the scalar K scores, in double.
        std::vector<float> scores(n_pos);
        token_scores_scalar(kv, q.data(), 1, n_pos, scores.data());
        const double top = *std::max_element(scores.begin(), scores.end());
        std::vector<double> e(n_pos);
        double sum = 0;
        for (int t = 0; t < n_pos; ++t) {
          e[t] = std::exp(scores[t] - top);
          sum += e[t];
        }
        const std::vector<double> bound = v_rounding_bound(kv, q.data(), n_pos);
        for (Isa isa : isas_under_test()) {
          CAPTURE(isa_name(isa));
          std::vector<float> scratch_scores(n_pos), out(hd);
          kernels_for(isa).attend(kv, q.data(), 1, n_pos, scratch_scores.data(), out.data());
          for (int i = 0; i < hd; ++i) {
            double exact = 0;
            for (int t = 0; t < n_pos; ++t)
              exact += e[t] * (vs[t] * row_code(v.data() + t * row, bits, i) + vm[t]);
            exact /= sum;
            CAPTURE(i);
            CHECK(std::fabs(out[i] - exact) <= bound[i] + 1e-4 * (1 + std::fabs(exact)));
          }
        }
      }
}

namespace {

// K per channel over groups (KIVI) and V per token, all random; modes make it adversarial.
struct KiviCase {
  std::vector<uint8_t> k_codes, v_codes;
  std::vector<uint16_t> k_scale, k_min, v_scale, v_min;  // f16, as KvView holds them
  std::vector<float> k_float;
  KvView kv;

  // mode 0: random; 1: every channel constant (all codes 0 in even groups, the maximum in odd
  // ones); 2: channel 3 a huge outlier (scale and minimum ×1e3).
  KiviCase(int hd, int bits, int G, int n_pos, int mode, std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> byte(0, 255);
    const int groups = n_pos / G;
    const size_t group_bytes = static_cast<size_t>(hd) * G * bits / 8;
    k_codes.resize(groups * group_bytes);
    for (size_t i = 0; i < k_codes.size(); ++i) {
      const int odd = i / group_bytes % 2;
      k_codes[i] = static_cast<uint8_t>(mode == 1 ? (odd ? 0xFF : 0) : byte(rng));
    }
    k_scale.resize(static_cast<size_t>(groups) * hd);
    k_min.resize(k_scale.size());
    for (size_t i = 0; i < k_scale.size(); ++i) {
      const float big = mode == 2 && i % hd == 3 ? 1e3f : 1.0f;
      k_scale[i] = f32_to_f16(big * (0.01f + std::fabs(normal(rng)) * 0.05f));
      k_min[i] = f32_to_f16(big * normal(rng));
    }
    k_float.resize(static_cast<size_t>(G) * (hd + 3));  // positions hd + 3 apart: a wider stride
    for (float& f : k_float) f = normal(rng);
    const size_t v_stride = static_cast<size_t>(hd) * bits / 8;
    v_codes.resize(v_stride * n_pos);
    for (auto& b : v_codes) b = static_cast<uint8_t>(byte(rng));
    v_scale.resize(n_pos);
    v_min.resize(n_pos);
    for (int t = 0; t < n_pos; ++t) {
      v_scale[t] = f32_to_f16(0.01f + std::fabs(normal(rng)) * 0.05f);
      v_min[t] = f32_to_f16(normal(rng));
    }
    kv.head_dim = hd;
    kv.bits = bits;
    kv.v_codes = v_codes.data();
    kv.v_scale = v_scale.data();
    kv.v_min = v_min.data();
    kv.k_group = G;
    kv.k_group_codes = k_codes.data();
    kv.k_group_scale = k_scale.data();
    kv.k_group_min = k_min.data();
    kv.k_float = k_float.data();
    kv.k_float_stride = hd + 3;
  }

  // Whether position t is in a complete group (else in the float part).
  bool in_group(int t) const {
    return t / kv.k_group < static_cast<int>(v_scale.size()) / kv.k_group;
  }

  // The code of channel c at position t (in a complete group), as kivi_slot places it.
  int code(int t, int c) const {
    const int G = kv.k_group;
    const uint8_t* group = &k_codes[static_cast<size_t>(t / G) * kv.head_dim * G * kv.bits / 8];
    return kivi_code(group, G, kv.bits, c, t % G);
  }

  // K of position t as the layout defines it, and the magnitude of its terms (scale·code and
  // min cancel in k but not in the kernels' sums).
  std::pair<double, double> k(int t, int c) const {
    const int hd = kv.head_dim, G = kv.k_group, g = t / G, p = t % G;
    if (!in_group(t)) {
      const double f = k_float[p * kv.k_float_stride + c];
      return {f, std::fabs(f)};
    }
    const double sc = static_cast<double>(f16_to_f32(k_scale[g * hd + c])) * code(t, c);
    const double m = f16_to_f32(k_min[g * hd + c]);
    return {sc + m, std::fabs(sc) + std::fabs(m)};
  }

  // How far rounding q' = q·scale / sqrt(head_dim) to 16-bit integers (kv_kernels.h) may move
  // q·k_t: half a step per unit of code.
  double q16_bound(const float* q, int t) const {
    if (!in_group(t)) return 0.0;
    const int hd = kv.head_dim, g = t / kv.k_group;
    double top = 0.0, codes = 0.0;
    for (int c = 0; c < hd; ++c) {
      const double scaled = static_cast<double>(q[c]) * f16_to_f32(k_scale[g * hd + c]);
      top = std::max(top, std::fabs(scaled));
      codes += code(t, c);
    }
    return 0.5 * top / std::sqrt(static_cast<double>(hd)) / 32767.0 * codes;
  }
};

using ScoresFn = void (*)(const KvView&, const float*, int, int, float*);
enum class KLayout { kPerToken, kKivi };

// The K scores of `layout`: the scalar version first, then those of the ISAs this CPU runs.
std::vector<std::pair<std::string, ScoresFn>> score_versions(KLayout layout) {
  const bool kivi = layout == KLayout::kKivi;
  std::vector<std::pair<std::string, ScoresFn>> v = {
      {"scalar", kivi ? kivi_scores_scalar : token_scores_scalar}};
  for (Isa isa : supported_isas()) {
#if defined(__x86_64__)
    if (isa == Isa::kAvx2) v.emplace_back("avx2", kivi ? kivi_scores_avx2 : token_scores_avx2);
    if (isa == Isa::kAvx512)
      v.emplace_back("avx512", kivi ? kivi_scores_avx512 : token_scores_avx512);
#elif defined(__aarch64__)
    if (isa == Isa::kNeon) v.emplace_back("neon", kivi ? kivi_scores_neon : token_scores_neon);
#endif
    (void)isa;
  }
  return v;
}

}  // namespace

TEST_CASE("kernels: per-token K scores match q·k of the dequantized rows") {
  std::mt19937 rng(76);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> byte(0, 255);
  const auto versions = score_versions(KLayout::kPerToken);
  // Head sizes around each ISA's vector of codes (32 or 64 bytes), rows of 4 bytes (several to
  // a vector), of 8, 16 and 32 bytes, rows whose last part is 4, 8, 16 or another number of
  // bytes, and the largest head size, 256.
  for (int hd : {2, 8, 12, 16, 32, 48, 62, 64, 66, 128, 130, 256})
    for (int bits : {4, 8})
      for (int n_pos : {1, 7, 8, 15, 16, 17, 100})
        // mode 0: random; 1: every code the maximum and q all 1 (every qi 32767: the largest
        // sums, near the int32 limit at 256 channels of 8 bits); 2: channel 1 of q 1e4 times
        // the others (they round to a few steps) and a position's scale 1e3 times the others.
        for (int mode : {0, 1, 2}) {
          CAPTURE(hd); CAPTURE(bits); CAPTURE(n_pos); CAPTURE(mode);
          const int n_q = 1 + (hd + n_pos + mode) % 7;  // query heads sharing the KV head
          CAPTURE(n_q);
          const size_t row = static_cast<size_t>(hd) * bits / 8;
          std::vector<uint8_t> k(row * n_pos);
          for (auto& b : k) b = static_cast<uint8_t>(mode == 1 ? 0xFF : byte(rng));
          std::vector<float> ks(n_pos), km(n_pos);
          for (int t = 0; t < n_pos; ++t) {
            ks[t] = (mode == 2 && t == n_pos / 2 ? 1e3f : 1.0f) *
                    (0.01f + std::fabs(normal(rng)) * 0.05f);
            km[t] = normal(rng);
          }
          std::vector<float> q(static_cast<size_t>(n_q) * hd);
          for (size_t i = 0; i < q.size(); ++i)
            q[i] = mode == 1 ? 1.0f : (mode == 2 && i % hd == 1 ? 1e4f : 1.0f) * normal(rng);
          const auto ks16 = round_to_f16(ks), km16 = round_to_f16(km);
          const KvView kv{hd, bits, k.data(), ks16.data(), km16.data()};
          std::vector<float> got(static_cast<size_t>(n_q) * n_pos), reference;
          for (const auto& [name, scores] : versions) {
            CAPTURE(name);
            std::fill(got.begin(), got.end(), std::nanf(""));
            scores(kv, q.data(), n_q, n_pos, got.data());
            if (reference.empty()) reference = got;  // the scalar version's
            for (int h = 0; h < n_q; ++h) {
              const float* qh = &q[h * hd];
              double top = 0.0;
              for (int c = 0; c < hd; ++c) top = std::max(top, std::fabs(double{qh[c]}));
              for (int t = 0; t < n_pos; ++t) {
                const uint8_t* codes = &k[t * row];
                double exact = 0.0, norm = 0.0, code_sum = 0.0;
                for (int c = 0; c < hd; ++c) {
                  const double sc = double{ks[t]} * row_code(codes, bits, c);
                  exact += qh[c] * (sc + km[t]);
                  norm += std::fabs(qh[c]) * (std::fabs(sc) + std::fabs(km[t]));
                  code_sum += row_code(codes, bits, c);
                }
                const double root = std::sqrt(static_cast<double>(hd));
                exact /= root;
                norm /= root;
                // qn = q / sqrt(hd) rounded to steps of max|qn| / 32767: half a step per unit
                // of code, times the position's scale.
                const double q16_bound = 0.5 * top / root / 32767.0 * code_sum * ks[t];
                const float score = got[h * n_pos + t];
                CHECK(std::fabs(score - exact) <= 1e-5 * (1.0 + norm) + q16_bound);
                // The integer dots are exact: the versions differ by the float steps only.
                CHECK(std::fabs(score - reference[h * n_pos + t]) <= 1e-6 * (1.0 + norm));
              }
            }
          }
        }
}

TEST_CASE("kernels: KIVI K scores match q·k of the dequantized layout") {
  std::mt19937 rng(78);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const auto versions = score_versions(KLayout::kKivi);
  for (int hd : {8, 12, 64, 128})
    for (int bits : {4, 8})
      for (int G : {16, 32, 64, 128})
        for (int n_pos : {1, G - 1, G, G + 5, 3 * G + 7, 300})
          for (int mode : {0, 1, 2}) {
            CAPTURE(hd); CAPTURE(bits); CAPTURE(G); CAPTURE(n_pos); CAPTURE(mode);
            const int n_q = 1 + (n_pos + mode) % 7;  // query heads sharing the KV head
            CAPTURE(n_q);
            const KiviCase kc(hd, bits, G, n_pos, mode, rng);
            std::vector<float> q(static_cast<size_t>(n_q) * hd);
            std::vector<float> got(static_cast<size_t>(n_q) * n_pos);
            for (float& f : q) f = normal(rng);
            std::vector<float> reference;
            for (const auto& [name, scores] : versions) {
              CAPTURE(name);
              scores(kc.kv, q.data(), n_q, n_pos, got.data());
              if (reference.empty()) reference = got;  // the scalar version's
              for (int h = 0; h < n_q; ++h)
                for (int t = 0; t < n_pos; ++t) {
                  double exact = 0.0, norm = 0.0;
                  for (int c = 0; c < hd; ++c) {
                    const auto [k, size] = kc.k(t, c);
                    exact += q[h * hd + c] * k;
                    norm += std::fabs(q[h * hd + c]) * size;
                  }
                  exact /= std::sqrt(static_cast<double>(hd));
                  norm /= std::sqrt(static_cast<double>(hd));
                  // float sums of hd products, in another order (and q'·code + constant form),
                  // with q' in 16-bit integers
                  const float score = got[h * n_pos + t];
                  CHECK(std::fabs(score - exact) <=
                        1e-5 * (1.0 + norm) + kc.q16_bound(&q[h * hd], t));
                  // The integer dots are exact: the versions differ by the float steps only.
                  CHECK(std::fabs(score - reference[h * n_pos + t]) <= 1e-5 * (1.0 + norm));
                }
            }
          }
}

TEST_CASE("kernels: attention over a KIVI K cache matches the scalar reference") {
  std::mt19937 rng(79);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const auto isas = isas_under_test();
  for (int hd : {8, 64, 128})
    for (int bits : {4, 8})
      for (int G : {16, 32})
        for (int n_pos : {1, G - 1, G, 2 * G + 3, 300}) {
          CAPTURE(hd); CAPTURE(bits); CAPTURE(G); CAPTURE(n_pos);
          const int n_q = 1 + (hd + n_pos + G) % 7;  // query heads sharing the KV head
          CAPTURE(n_q);
          const KiviCase kc(hd, bits, G, n_pos, 0, rng);
          std::vector<float> q(static_cast<size_t>(n_q) * hd);
          for (float& f : q) f = 0.3f * normal(rng);
          for (Isa isa : isas) {
            CAPTURE(isa_name(isa));
            check_attend_heads(kernels_for(isa), kc.kv, q, n_q, n_pos);
          }
        }
}

TEST_CASE("kernels: the bandwidth probe's byte total is exact") {
  std::mt19937 rng(83);
  // Random bytes, and all 0xFF over 1 MB (the largest per-lane sums, for the NEON 16-bit
  // lanes), at every alignment and at lengths around each ISA's step.
  std::vector<uint8_t> random_bytes((1 << 20) + 64), ones((1 << 20) + 64, 0xFF);
  for (uint8_t& b : random_bytes) b = static_cast<uint8_t>(rng());
  const auto isas = isas_under_test();
  for (const std::vector<uint8_t>* buf : {&random_bytes, &ones})
    for (size_t offset : {0, 1, 7, 33})
      for (size_t n : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{127}, size_t{128},
                       size_t{255}, size_t{256}, size_t{257}, size_t{4095}, size_t{1} << 20}) {
        CAPTURE(offset); CAPTURE(n);
        uint64_t expected = 0;
        for (size_t i = 0; i < n; ++i) expected += (*buf)[offset + i];
        CHECK(byte_total_scalar(buf->data() + offset, n) == expected);
        for (Isa isa : isas) {
          CAPTURE(isa_name(isa));
          CHECK(kernels_for(isa).byte_total(buf->data() + offset, n) == expected);
        }
      }
}

TEST_CASE("kernels: the checksum lanes of every ISA are the file checksum's") {
  // Up to kChecksumWays ranges side by side, each from its own lanes: random bytes, all 0xFF
  // and all zero (the extremes of the 64-bit products), at lengths around one stripe, at odd
  // offsets. Against the reference, which in turn finishes into fmt::checksum from the seed.
  std::mt19937_64 rng(97);
  const size_t len = 4096 + 32;
  std::vector<uint8_t> random_bytes(kChecksumWays * len + 8), ones(random_bytes.size(), 0xFF),
      zeros(random_bytes.size(), 0);
  for (uint8_t& b : random_bytes) b = static_cast<uint8_t>(rng());
  const auto isas = isas_under_test();
  for (const std::vector<uint8_t>* buf : {&random_bytes, &ones, &zeros})
    for (int n = 0; n <= kChecksumWays; ++n)
      for (size_t bytes : {size_t{0}, size_t{32}, size_t{96}, len - 32, len})
        for (bool seeded : {true, false}) {
          CAPTURE(n); CAPTURE(bytes); CAPTURE(seeded);
          const uint8_t* p[kChecksumWays];
          std::vector<uint64_t> start(4 * kChecksumWays);
          for (int c = 0; c < kChecksumWays; ++c) {
            p[c] = buf->data() + c * len + (c % 2 == 1 ? 7 : 0);
            for (int l = 0; l < 4; ++l) start[4 * c + l] = seeded ? fmt::kChecksumSeed[l] : rng();
          }
          std::vector<uint64_t> want = start;
          checksum_lanes_scalar(p, n, bytes, want.data());
          for (int c = 0; c < n && seeded; ++c)
            CHECK(fmt::Checksum(&want[4 * c], bytes).digest() == fmt::checksum(p[c], bytes));
          for (Isa isa : isas) {
            CAPTURE(isa_name(isa));
            std::vector<uint64_t> got = start;
            kernels_for(isa).checksum_lanes(p, n, bytes, got.data());
            CHECK(got == want);  // the lanes past n untouched as well
          }
        }
}

TEST_CASE("kernels: the epilogue gives the scaled exact block dots in every layout") {
  // Against Σ_b s_w·s_x·Σ_j (q − z_x)·(w' − z_w) in double, from the codes themselves: one
  // block per row (32-bit sums, and 8-bit rows too wide for them), several blocks in one
  // weight group (per-head activation segments), several groups (one per block: 11 and 32 of
  // them, past the epilogue's 8 vector lanes; two blocks per group, in 6 blocks and in 20,
  // past the lanes), and two groups of 8-bit blocks too wide for 32-bit sums; random and
  // extreme codes.
  std::mt19937 rng(89);
  struct Layout { int rows, cols, bits, group, block, segment; };
  const Layout layouts[] = {{13, 256, 4, 256, 256, 256},     {6, 22016, 8, 22016, 22016, 22016},
                            {13, 512, 4, 512, 64, 64},       {7, 512, 8, 512, 32, 32},
                            {9, 256, 4, 32, 32, 256},        {5, 384, 8, 128, 64, 64},
                            {11, 1408, 4, 128, 128, 1408},   {6, 2048, 8, 64, 64, 2048},
                            {4, 1024, 4, 64, 64, 64},        {5, 44032, 8, 22016, 22016, 44032},
                            {7, 1280, 4, 128, 64, 64}};
  for (const Layout& s : layouts)
    for (int mode = 0; mode < 3; ++mode) {
      CAPTURE(s.cols); CAPTURE(s.bits); CAPTURE(s.block); CAPTURE(s.segment); CAPTURE(mode);
      const int tokens = 3, nb = s.cols / s.block, nseg = s.cols / s.segment;
      RandomMatrix w(s.rows, s.cols, s.bits, s.group, s.block, mode, rng);
      for (int32_t& z : w.zeros) z = mode == 0 ? z : mode == 1 ? -(1 << (s.bits - 1)) : (1 << (s.bits - 1)) - 1;
      QuantizedActs a;
      a.tokens = tokens;
      a.cols_padded = s.cols;
      a.segment = s.segment;
      a.block = s.block;
      a.q = random_acts(tokens, s.cols, 8, mode, rng);
      std::uniform_real_distribution<float> scale(0.001f, 0.1f);
      std::uniform_int_distribution<int> zero(0, 255);
      for (int k = 0; k < tokens * nseg; ++k) {
        a.scale.push_back(scale(rng));
        a.zero.push_back(mode == 0 ? zero(rng) : mode == 1 ? 255 : 0);
      }
      a.sums.assign(static_cast<size_t>(tokens) * nb, 0);
      for (int t = 0; t < tokens; ++t)
        for (int j = 0; j < s.cols; ++j) a.sums[t * nb + j / s.block] += a.q[t * s.cols + j];
      std::vector<int32_t> dots(static_cast<size_t>(tokens) * s.rows * nb);
      kScalarKernels.block_dots(w.m, a.q.data(), s.cols, tokens, 0, s.rows, dots.data());
      std::vector<float> y(static_cast<size_t>(tokens) * s.rows);
      linear_epilogue(w.m, a, 0, tokens, 0, s.rows, dots.data(), false, y.data(), s.rows);
      for (int t = 0; t < tokens; ++t)
        for (int r = 0; r < s.rows; ++r) {
          double expected = 0.0, magnitude = 0.0;
          for (int j = 0; j < s.cols; ++j) {
            const int g = r * (s.cols / s.group) + j / s.group, seg = t * nseg + j / s.segment;
            const double v = static_cast<double>(w.scales[g]) * a.scale[seg] *
                             (a.q[t * s.cols + j] - a.zero[seg]) *
                             (w.signed_codes[static_cast<size_t>(r) * s.cols + j] - w.zeros[g]);
            expected += v;
            magnitude += std::fabs(v);
          }
          CHECK(std::fabs(y[t * s.rows + r] - expected) <= 1e-5 * (magnitude + 1e-30));
        }
    }
}

namespace {

// Every ISA's SwiGLU of (gate, up) against the scalar reference: no NaN unless the reference has
// one, the same infinities, and otherwise within the polynomial e^x's few 1e−8 plus an ulp or
// two of the quotient and product (results below the smallest normal float are absolute).
// Taken by value: copies of exactly n floats, so AddressSanitizer catches any access past them.
void check_swiglu(std::vector<float> gate, std::vector<float> up, const std::vector<Isa>& isas) {
  const int n = static_cast<int>(gate.size());
  std::vector<float> ref = gate;
  kScalarKernels.swiglu(ref.data(), up.data(), n);
  for (Isa isa : isas) {
    CAPTURE(isa_name(isa));
    std::vector<float> got = gate;
    kernels_for(isa).swiglu(got.data(), up.data(), n);
    for (int i = 0; i < n; ++i) {
      CAPTURE(i); CAPTURE(gate[i]); CAPTURE(up[i]); CAPTURE(ref[i]); CAPTURE(got[i]);
      CHECK(std::isnan(got[i]) == std::isnan(ref[i]));
      if (std::isinf(ref[i]))
        CHECK(got[i] == ref[i]);
      else if (!std::isnan(ref[i]))
        CHECK(std::fabs(got[i] - ref[i]) <=
              2e-6f * std::fabs(ref[i]) + std::numeric_limits<float>::min());
    }
  }
}

}  // namespace

TEST_CASE("kernels: SwiGLU matches the scalar reference") {
  std::mt19937 rng(97);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const auto isas = isas_under_test();
  // Lengths around the vector widths (4, 8, 16), an MLP width of a tiny model and 5632 + 3.
  for (int n : {1, 7, 16, 17, 172, 5635}) {
    CAPTURE(n);
    std::vector<float> gate(n), up(n);
    for (float& g : gate) g = 4.0f * normal(rng);
    for (float& u : up) u = normal(rng);
    check_swiglu(gate, up, isas);
  }
  // Every pair of an adversarial gate and up: e^−gate exactly 1, 0 in float (gate > 64) or
  // +inf (gate < −88.72, where the result is ±0), and 88.5, whose e^88.5 is finite only with
  // the largest power of two; then the last n pairs alone, for every length of a partial vector.
  const float gates[] = {0.0f,  -0.0f,  1e-30f, -1e-30f, 20.0f,  -20.0f, 64.0f, -64.0f,
                         88.0f, -88.0f, 88.5f,  -88.5f,  100.0f, -100.0f, 1e30f, -1e30f};
  const float ups[] = {0.0f, 1.0f, -3e4f, 1e30f, -1e30f};
  std::vector<float> gate, up;
  for (float g : gates)
    for (float u : ups) {
      gate.push_back(g);
      up.push_back(u);
    }
  check_swiglu(gate, up, isas);
  for (int n = 1; n <= 17; ++n) {
    CAPTURE(n);
    check_swiglu(std::vector<float>(gate.end() - n, gate.end()),
                 std::vector<float>(up.end() - n, up.end()), isas);
  }
}
