// The scalar reference kernels: plain loops that define what every ISA must compute.
#include <algorithm>
#include <cmath>

#include "engine/format/rotor_format.h"
#include "engine/import/dtype.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/kv_kernels.h"
#include "engine/kernels/pack.h"

namespace rotor {

namespace {

void block_dots_scalar(const PackedMatrix& w, const uint8_t* q, size_t q_stride, int n_tokens,
                       int r0, int r1, int32_t* dots) {
  const int nb = w.blocks();
  for (int t = 0; t < n_tokens; ++t) {
    const uint8_t* qt = q + t * q_stride;
    for (int r = r0; r < r1; ++r) {
      const uint8_t* row = w.codes + static_cast<size_t>(r) * w.row_bytes();
      int32_t* out = dots + (static_cast<size_t>(t) * (r1 - r0) + (r - r0)) * nb;
      for (int b = 0; b < nb; ++b) {
        int32_t acc = 0;
        for (int j = b * w.block; j < (b + 1) * w.block; ++j) acc += qt[j] * packed_code(row, w.bits, j);
        out[b] = acc;
      }
    }
  }
}

void swiglu_scalar(float* gate, const float* up, int n) {
  for (int i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace

void centered_dots_scalar(const PackedMatrix& w, const int8_t* a, int r0, int r1, int32_t* dots) {
  const int nb = w.blocks();
  for (int r = r0; r < r1; ++r) {
    const uint8_t* row = w.codes + static_cast<size_t>(r) * w.row_bytes();
    for (int b = 0; b < nb; ++b) {
      int32_t acc = 0;
      for (int j = b * w.block; j < (b + 1) * w.block; ++j)
        acc += a[j] * packed_code(row, w.bits, j);
      dots[static_cast<size_t>(r - r0) * nb + b] = acc;
    }
  }
}

void quantize_acts_scalar(const float* x, int cols, int n_tokens, const ActQuantParams& p,
                          QuantizedActs& a) {
  const int levels = (1 << p.bits) - 1;
  const int seg = a.segment, nseg = a.cols_padded / seg, nblk = a.cols_padded / a.block;
  for (int t = 0; t < n_tokens; ++t) {
    const float* xt = x + static_cast<size_t>(t) * cols;
    uint8_t* qt = &a.q[static_cast<size_t>(t) * a.cols_padded];
    for (int s = 0; s < nseg; ++s) {
      const int begin = s * seg, end = std::min(cols, begin + seg);
      float lo = 0.0f, hi = 0.0f;
      for (int j = begin; j < end; ++j) {
        lo = std::min(lo, xt[j]);
        hi = std::max(hi, xt[j]);
      }
      const ActQuantParams::Clip clip = p.clip(s);
      lo *= clip.min;
      hi *= clip.max;
      float scale = (hi - lo) / levels;
      if (!(scale > 0.0f)) scale = 1.0f;  // an all-zero segment: every code is the zero point
      const float inv = 1.0f / scale;
      const int zero = std::clamp(static_cast<int>(std::nearbyint(-lo * inv)), 0, levels);
      for (int j = begin; j < begin + seg; ++j) {
        const float v = j < end ? xt[j] : 0.0f;
        const int code = static_cast<int>(std::nearbyint(v * inv)) + zero;
        qt[j] = static_cast<uint8_t>(std::clamp(code, 0, levels));
      }
      a.scale[static_cast<size_t>(t) * nseg + s] = scale;
      a.zero[static_cast<size_t>(t) * nseg + s] = zero;
    }
    for (int b = 0; b < nblk; ++b) {
      int32_t sum = 0;
      for (int j = b * a.block; j < (b + 1) * a.block; ++j) sum += qt[j];
      a.sums[static_cast<size_t>(t) * nblk + b] = sum;
    }
  }
}

float exp_shifted(float* scores, int n) {
  float max = scores[0];
  for (int t = 1; t < n; ++t) max = std::max(max, scores[t]);
  float sum = 0.0f;
  for (int t = 0; t < n; ++t) {
    const float d = scores[t] - max;
    scores[t] = d < kSoftmaxCutoff ? 0.0f : std::exp(d);
    sum += scores[t];
  }
  return sum;
}

namespace {
// Softmax and the V sum of one head whose K scores are in scores (scratch after).
void attend_head_scalar(const KvView& kv, float* scores, int n_pos, float* out) {
  const int hd = kv.head_dim;
  const float inv_sum = 1.0f / exp_shifted(scores, n_pos);
  float min_term = 0.0f;
  std::fill(out, out + hd, 0.0f);
  for (int t = 0; t < n_pos; ++t) {
    const float p = scores[t] * inv_sum;
    const float ps = p * f16_to_f32(kv.v_scale[t]);
    min_term += p * f16_to_f32(kv.v_min[t]);
    const uint8_t* v = kv.v_codes + static_cast<size_t>(t) * kv.head_bytes();
    for (int i = 0; i < hd; ++i) out[i] += ps * static_cast<float>(row_code(v, kv.bits, i));
  }
  for (int i = 0; i < hd; ++i) out[i] += min_term;
}
}  // namespace

void attend_scalar(const KvView& kv, const float* q, int n_q, int n_pos, float* scores,
                   float* out) {
  const int hd = kv.head_dim;
  if (kv.k_group)
    kivi_scores_scalar(kv, q, n_q, n_pos, scores);
  else
    token_scores_scalar(kv, q, n_q, n_pos, scores);
  for (int h = 0; h < n_q; ++h)
    attend_head_scalar(kv, scores + static_cast<size_t>(h) * n_pos, n_pos,
                       out + static_cast<size_t>(h) * hd);
}

uint64_t byte_total_scalar(const uint8_t* p, size_t n) {
  uint64_t total = 0;
  for (size_t i = 0; i < n; ++i) total += p[i];
  return total;
}

void vecmat_f16_scalar(const float* x, size_t xs, int n_tokens, const uint16_t* m, int rows,
                       int cols, size_t ld, float* y, size_t ys) {
  for (int t = 0; t < n_tokens; ++t) {
    const float* xt = x + t * xs;
    float* yt = y + t * ys;
    std::fill(yt, yt + cols, 0.0f);
    for (int i = 0; i < rows; ++i)  // row by row through memory; each y[j] is one chain in i
      for (int j = 0; j < cols; ++j) yt[j] = std::fma(xt[i], f16_to_f32(m[i * ld + j]), yt[j]);
  }
}

void f16_to_f32_scalar(const uint16_t* h, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = f16_to_f32(h[i]);
}

void checksum_lanes_scalar(const uint8_t* const* p, int n, size_t bytes, uint64_t* lanes) {
  for (int c = 0; c < n; ++c) format::checksum_stripes(lanes + 4 * c, p[c], bytes);
}

const KernelTable kScalarKernels = {"scalar", block_dots_scalar, centered_dots_scalar,
                                    quantize_acts_scalar, attend_scalar, hadamard_scalar,
                                    byte_total_scalar, swiglu_scalar, vecmat_f16_scalar,
                                    f16_to_f32_scalar, checksum_lanes_scalar};

}  // namespace rotor
