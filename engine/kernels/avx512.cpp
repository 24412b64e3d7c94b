// AVX-512 VNNI kernels (with VL and BW).
//
// Block dots: vpdpbusd multiplies the unsigned activation codes by the signed weight codes and
// sums groups of four into int32 lanes, exactly, so the results equal the scalar reference.
// Work goes in register tiles: in prefill 4 rows × up to 4 tokens, so each weight step is
// loaded and unpacked once for all the tile's tokens and each activation step once for all its
// rows; in decode 4 rows × (with small blocks) 4 consecutive blocks. At the end of a block the
// tile's accumulators are reduced four at a time.
//
// Activation quantization repeats the scalar reference's float operations lane by lane, so
// codes, scales and zero points are bit-identical. Attention vectorizes the scalar sums over
// the head dimension (a different summation order, so equal within float rounding).

// GCC 12 wrongly reports its own _mm512_undefined_* placeholders as uninitialized (GCC bug
// 105593, fixed in 13) wherever intrinsics that use them are inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/kernels/x86_tiles.h"

namespace rotor {

namespace {

// The first n of 64 byte lanes (none for n ≤ 0, all for n ≥ 64).
inline __mmask64 first64(int n) {
  return n <= 0 ? 0 : n >= 64 ? ~0ull : (1ull << n) - 1;
}

// Σ p[0, n).
inline int32_t byte_sum(const uint8_t* p, int n) {
  __m512i acc = _mm512_setzero_si512();
  for (int j = 0; j < n; j += 64)
    acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(first64(n - j), p + j),
                                                _mm512_setzero_si512()));
  return static_cast<int32_t>(_mm512_reduce_add_epi64(acc));
}

// ---------------------------------------------------------------------------- block dots


// Nibbles of one packed 64-column chunk in column order: the low nibbles (columns 0..31) fill
// the lower 256 bits, the high nibbles (columns 32..63) the upper.
inline __m512i unpack_chunk(const uint8_t* chunk) {
  const __m512i both =
      _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(chunk)));
  const __m512i shift = _mm512_set_epi64(0x0004000400040004, 0x0004000400040004,
                                         0x0004000400040004, 0x0004000400040004, 0, 0, 0, 0);
  return _mm512_and_si512(_mm512_srlv_epi16(both, shift), _mm512_set1_epi8(0x0F));
}

// Nibbles of columns [col, col + 32), col a multiple of 32: one half of a chunk.
inline __m256i unpack_half(const uint8_t* row, size_t col) {
  const __m256i bytes =
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + col / kChunk * (kChunk / 2)));
  const __m128i shift = _mm_cvtsi32_si128(col % kChunk == 0 ? 0 : 4);
  return _mm256_and_si256(_mm256_srl_epi16(bytes, shift), _mm256_set1_epi8(0x0F));
}

// A step along a row. Blocks that are multiples of 64 columns go a whole chunk (a zmm) at a
// time; odd multiples of 32 go half a chunk (a ymm) at a time, so no step straddles two blocks.
template <int Bits>
struct ZmmStep {
  using V = __m512i;
  using W = V;
  using Q = V;
  static constexpr int kCols = 64;
  static constexpr int kBits = Bits;
  static constexpr int kOffset = Bits == 4 ? kNibbleOffset : 0;  // in the stored codes
  static V zero() { return _mm512_setzero_si512(); }
  static Q acts(const uint8_t* q, size_t col) { return _mm512_loadu_si512(q + col); }
  static W weights(const uint8_t* row, size_t col) {
    if constexpr (Bits == 8)
      return _mm512_loadu_si512(row + col);
    else
      return unpack_chunk(row + col / 2);
  }
  static V dot(V acc, Q q, W w) { return _mm512_dpbusd_epi32(acc, q, w); }
};

template <int Bits>
struct YmmStep {
  using V = __m256i;
  using W = V;
  using Q = V;
  static constexpr int kCols = 32;
  static constexpr int kBits = Bits;
  static constexpr int kOffset = Bits == 4 ? kNibbleOffset : 0;
  static V zero() { return _mm256_setzero_si256(); }
  static Q acts(const uint8_t* q, size_t col) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + col));
  }
  static W weights(const uint8_t* row, size_t col) {
    if constexpr (Bits == 8)
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + col));
    else
      return unpack_half(row, col);
  }
  static V dot(V acc, Q q, W w) { return _mm256_dpbusd_epi32(acc, q, w); }
};

// The steps for the block size.
template <int Bits>
void dots_by_block(const DotJob& job, int n_tokens) {
  if (job.w.block % 64 == 0)
    tiled_dots<ZmmStep<Bits>, 4, 4>(job, n_tokens);
  else if (job.w.block % 32 == 0)
    tiled_dots<YmmStep<Bits>, 4, 4>(job, n_tokens);
  else
    narrow_block_dots<YmmStep<Bits>>(job, n_tokens);
}

void block_dots_avx512(const PackedMatrix& w, const uint8_t* q, size_t q_stride, int n_tokens,
                       int r0, int r1, int32_t* dots) {
  // Other blocks come only with odd head sizes of tiny models: the plain loops will do.
  if (w.block % 32 != 0 && (32 % w.block != 0 || w.block % 4 != 0))
    return kScalarKernels.block_dots(w, q, q_stride, n_tokens, r0, r1, dots);
  if (w.bits == 8) {
    const DotJob job{w, q, q_stride, r0, r1, dots, nullptr};
    return dots_by_block<8>(job, n_tokens);
  }
  const DotJob job{w, q, q_stride, r0, r1, dots,
                   nibble_offsets(w, q, q_stride, n_tokens, byte_sum)};
  dots_by_block<4>(job, n_tokens);
}

// ---------------------------------------------------------------- activation quantization

// The first n of 16 lanes (none for n ≤ 0, all for n ≥ 16).
inline __mmask16 first16(int n) {
  return n <= 0 ? 0 : n >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1);
}
// x as it stands, rounded to float: keeps the compiler (this file is built with -mfma) from
// fusing the product into a following subtraction as an FMA, which rounds once instead of
// twice; the scalar reference, built without FMA, rounds twice.
inline float rounded(float x) {
  asm("" : "+v"(x));
  return x;
}

void quantize_acts_avx512(const float* x, int cols, int n_tokens, const ActQuantParams& p,
                          QuantizedActs& a) {
  const int levels = (1 << p.bits) - 1;
  const int seg = a.segment, nseg = a.cols_padded / seg, nblk = a.cols_padded / a.block;
  for (int t = 0; t < n_tokens; ++t) {
    const float* xt = x + static_cast<size_t>(t) * cols;
    uint8_t* qt = &a.q[static_cast<size_t>(t) * a.cols_padded];
    for (int s = 0; s < nseg; ++s) {
      const int begin = s * seg, end = std::min(cols, begin + seg);
      // min(x, lo) picks lo when x is NaN, as std::min(lo, x) does; masked lanes read 0.
      __m512 lo16 = _mm512_setzero_ps(), hi16 = _mm512_setzero_ps();
      for (int j = begin; j < end; j += 16) {
        const __m512 v = _mm512_maskz_loadu_ps(first16(end - j), xt + j);
        lo16 = _mm512_min_ps(v, lo16);
        hi16 = _mm512_max_ps(v, hi16);
      }
      // From here on the scalar reference's operations, in its order.
      const float lo = rounded(_mm512_reduce_min_ps(lo16) * p.clip_min);
      const float hi = rounded(_mm512_reduce_max_ps(hi16) * p.clip_max);
      float scale = (hi - lo) / levels;
      if (!(scale > 0.0f)) scale = 1.0f;
      const float inv = 1.0f / scale;
      const int zero = std::clamp(static_cast<int>(std::nearbyint(-lo * inv)), 0, levels);
      const __m512 inv16 = _mm512_set1_ps(inv);
      const __m512i zero16 = _mm512_set1_epi32(zero), levels16 = _mm512_set1_epi32(levels);
      for (int j = begin; j < begin + seg; j += 16) {
        const __m512 v = _mm512_maskz_loadu_ps(first16(end - j), xt + j);
        // cvtps rounds to nearest even, as nearbyint does in the default rounding mode.
        const __m512i code =
            _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v, inv16)), zero16);
        const __m512i clamped =
            _mm512_min_epi32(_mm512_max_epi32(code, _mm512_setzero_si512()), levels16);
        _mm512_mask_cvtepi32_storeu_epi8(qt + j, first16(begin + seg - j), clamped);
      }
      a.scale[static_cast<size_t>(t) * nseg + s] = scale;
      a.zero[static_cast<size_t>(t) * nseg + s] = zero;
    }
    for (int b = 0; b < nblk; ++b)
      a.sums[static_cast<size_t>(t) * nblk + b] = byte_sum(qt + b * a.block, a.block);
  }
}

// ------------------------------------------------------------------------------ attention

// A cache row's codes go 16 bytes at a time: 16 elements with 8-bit codes; 32 with 4-bit codes,
// the even elements in the low nibbles, the odd ones in the high nibbles. The sums run in that
// order, over q and out rearranged to match once per call, so no nibbles need interleaving.
template <int Bits>
struct CodeGroups {
  static constexpr int kVecs = Bits == 8 ? 1 : 2;  // float vectors per group
  // The vectors of group g, whose valid bytes end at n_bytes.
  static void load(const uint8_t* codes, int g, int n_bytes, __m512 (&v)[kVecs]) {
    const uint8_t* p = codes + 16 * g;
    const int n = n_bytes - 16 * g;
    const __m128i raw = n >= 16 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p))
                                : _mm_maskz_loadu_epi8(first16(n), p);  // the row's last bytes
    const __m512i bytes = _mm512_cvtepu8_epi32(raw);
    if constexpr (Bits == 8) {
      v[0] = _mm512_cvtepi32_ps(bytes);
    } else {
      v[0] = _mm512_cvtepi32_ps(_mm512_and_si512(bytes, _mm512_set1_epi32(0x0F)));
      v[1] = _mm512_cvtepi32_ps(_mm512_srli_epi32(bytes, 4));
    }
  }
  // Where element i sits in that order.
  static int slot(int i) {
    if constexpr (Bits == 8) {
      return i;
    } else {
      const int m = i / 2;
      return (m / 16 * 2 + i % 2) * 16 + m % 16;
    }
  }
};

// e^x with a relative error of a few 1e-8: x = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor
// series to r^7, times 2^n. Below −88, e^x is under the smallest normal float: it becomes ~0.
inline __m512 exp16(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln2 in two parts, the first exact in few bits, so n·ln2 is subtracted without rounding.
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 poly = _mm512_set1_ps(1.0f / 5040);
#pragma GCC unroll 8
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f})
    poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(c));
  return _mm512_scalef_ps(poly, n);
}

template <int Bits>
void attend_vec(const KvView& kv, const float* q, int n_pos, float* scores, float* out) {
  using G = CodeGroups<Bits>;
  const int hd = kv.head_dim, n_bytes = (hd * Bits + 7) / 8, groups = (n_bytes + 15) / 16;
  const int lanes = groups * G::kVecs * 16;
  thread_local std::vector<float> buf;
  buf.assign(2 * static_cast<size_t>(lanes), 0.0f);
  float* qg = buf.data();  // q and out in the group order
  float* og = qg + lanes;
  for (int i = 0; i < hd; ++i) qg[G::slot(i)] = q[i];
  const float inv_sqrt = 1.0f / std::sqrt(static_cast<float>(hd));
  float q_sum = 0.0f;
  for (int i = 0; i < hd; ++i) q_sum += q[i];
  for (int t = 0; t < n_pos; ++t) {
    const uint8_t* k = kv.k_codes + t * kv.stride;
    // Two sums, even and odd groups, to halve the chain of dependent FMAs.
    __m512 dot[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    auto add_group = [&](int g, __m512& sum) {
      __m512 c[G::kVecs];
      G::load(k, g, n_bytes, c);
      for (int v = 0; v < G::kVecs; ++v)
        sum = _mm512_fmadd_ps(_mm512_loadu_ps(qg + (g * G::kVecs + v) * 16), c[v], sum);
    };
    int g = 0;
    for (; g + 2 <= groups; g += 2) {
      add_group(g, dot[0]);
      add_group(g + 1, dot[1]);
    }
    if (g < groups) add_group(g, dot[0]);
    const float dot_sum = _mm512_reduce_add_ps(_mm512_add_ps(dot[0], dot[1]));
    const size_t param = t * kv.param_stride;
    scores[t] = (kv.k_scale[param] * dot_sum + kv.k_min[param] * q_sum) * inv_sqrt;
  }
  float max = scores[0];
  for (int t = 1; t < n_pos; ++t) max = std::max(max, scores[t]);
  const __m512 max16 = _mm512_set1_ps(max);
  __m512 sum16 = _mm512_setzero_ps();
  int t = 0;
  for (; t + 16 <= n_pos; t += 16) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(scores + t), max16));
    _mm512_storeu_ps(scores + t, e);
    sum16 = _mm512_add_ps(sum16, e);
  }
  float sum = _mm512_reduce_add_ps(sum16);
  for (; t < n_pos; ++t) {
    scores[t] = std::exp(scores[t] - max);
    sum += scores[t];
  }
  // scores becomes each position's weight on the V codes: probability × scale.
  const float inv_sum = 1.0f / sum;
  float min_term = 0.0f;
  for (int u = 0; u < n_pos; ++u) {
    const float pr = scores[u] * inv_sum;
    scores[u] = pr * kv.v_scale[u * kv.param_stride];
    min_term += pr * kv.v_min[u * kv.param_stride];
  }
  // Σ weight·codes with the sums in registers, over as many groups at a time as they allow.
  constexpr int kPassGroups = 8 / G::kVecs;
  for (int g0 = 0; g0 < groups; g0 += kPassGroups) {
    const int n_groups = std::min(kPassGroups, groups - g0);
    __m512 acc[kPassGroups * G::kVecs];
    unrolled<kPassGroups * G::kVecs>([&](auto j) { acc[j] = _mm512_setzero_ps(); });
    for (int u = 0; u < n_pos; ++u) {
      const __m512 weight = _mm512_set1_ps(scores[u]);
      const uint8_t* v = kv.v_codes + u * kv.stride;
      unrolled<kPassGroups>([&](auto g) {
        if (g >= n_groups) return;
        __m512 c[G::kVecs];
        G::load(v, g0 + g, n_bytes, c);
        unrolled<G::kVecs>([&](auto j) {
          acc[g * G::kVecs + j] = _mm512_fmadd_ps(weight, c[j], acc[g * G::kVecs + j]);
        });
      });
    }
    unrolled<kPassGroups * G::kVecs>([&](auto j) {
      if (j < n_groups * G::kVecs) _mm512_storeu_ps(og + g0 * G::kVecs * 16 + j * 16, acc[j]);
    });
  }
  for (int i = 0; i < hd; ++i) out[i] = og[G::slot(i)] + min_term;
}

void attend_avx512(const KvView& kv, const float* q, int n_pos, float* scores, float* out) {
  if (kv.bits == 8)
    attend_vec<8>(kv, q, n_pos, scores, out);
  else
    attend_vec<4>(kv, q, n_pos, scores, out);
}

}  // namespace

const KernelTable kAvx512Kernels = {"avx512", block_dots_avx512, quantize_acts_avx512,
                                    attend_avx512};

}  // namespace rotor
