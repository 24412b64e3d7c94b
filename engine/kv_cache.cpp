#include "engine/kv_cache.h"

#include <algorithm>
#include <cmath>

#include "engine/kernels/kernels.h"
#include "engine/ops.h"

namespace rotor {

namespace {
// 4-bit codes lose too much at the extremes of a 16-level range; a 0.9 clip (METHODS.md §1)
// trades a little saturation for finer steps. 8-bit keeps the full range.
float clip_for(int bits) { return bits == 4 ? 0.9f : 1.0f; }

// Asymmetric per-vector quantization: x ≈ scale·code + min.
void quantize_vector(const float* x, int n, int bits, uint8_t* codes, float* scale, float* min) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const float c = clip_for(bits);
  const float mid = 0.5f * (lo + hi);
  lo = mid + (lo - mid) * c;
  hi = mid + (hi - mid) * c;
  const int levels = (1 << bits) - 1;
  const float s = hi > lo ? (hi - lo) / levels : 1.0f;
  const float inv = 1.0f / s;
  *scale = s;
  *min = lo;
  if (bits == 8) {
    for (int i = 0; i < n; ++i)
      codes[i] = static_cast<uint8_t>(std::clamp(static_cast<int>(std::nearbyint((x[i] - lo) * inv)), 0, levels));
  } else {
    std::fill(codes, codes + (n + 1) / 2, 0);
    for (int i = 0; i < n; ++i) {
      const int q = std::clamp(static_cast<int>(std::nearbyint((x[i] - lo) * inv)), 0, levels);
      codes[i / 2] |= static_cast<uint8_t>(i % 2 ? q << 4 : q);
    }
  }
}
}  // namespace

KvCache::KvCache(int n_layers, int ctx, int n_kv_heads, int head_dim, int bits)
    : ctx_(ctx),
      n_kv_heads_(n_kv_heads),
      head_dim_(head_dim),
      bits_(bits >= 16 ? 32 : bits),
      head_bytes_(static_cast<size_t>(head_dim) * (bits >= 16 ? 4 : bits) / 8) {
  const size_t slots = static_cast<size_t>(n_layers) * ctx * n_kv_heads;
  if (bits_ == 32) {
    kf_.resize(slots * head_dim);
    vf_.resize(slots * head_dim);
  } else {
    kq_.resize(slots * head_bytes_);
    vq_.resize(slots * head_bytes_);
    k_scale_.resize(slots);
    k_min_.resize(slots);
    v_scale_.resize(slots);
    v_min_.resize(slots);
  }
}

size_t KvCache::slot(int layer, int pos) const {
  return (static_cast<size_t>(layer) * ctx_ + pos) * n_kv_heads_;
}

void KvCache::store(int layer, int pos, const float* k, const float* v) {
  const size_t s = slot(layer, pos);
  if (bits_ == 32) {
    const size_t n = static_cast<size_t>(n_kv_heads_) * head_dim_;
    std::copy(k, k + n, kf_.begin() + s * head_dim_);
    std::copy(v, v + n, vf_.begin() + s * head_dim_);
    return;
  }
  for (int h = 0; h < n_kv_heads_; ++h) {
    const size_t i = s + h;
    quantize_vector(k + h * head_dim_, head_dim_, bits_, &kq_[i * head_bytes_], &k_scale_[i], &k_min_[i]);
    quantize_vector(v + h * head_dim_, head_dim_, bits_, &vq_[i * head_bytes_], &v_scale_[i], &v_min_[i]);
  }
}

void KvCache::attend(int layer, int kv_head, const float* q, int n_pos, float* scores,
                     float* out) const {
  if (bits_ == 32) return attend_float(layer, kv_head, q, n_pos, scores, out);
  const size_t i = slot(layer, 0) + kv_head;
  KvView kv;
  kv.head_dim = head_dim_;
  kv.bits = bits_;
  kv.stride = n_kv_heads_ * head_bytes_;
  kv.param_stride = n_kv_heads_;
  kv.k_codes = &kq_[i * head_bytes_];
  kv.v_codes = &vq_[i * head_bytes_];
  kv.k_scale = &k_scale_[i];
  kv.k_min = &k_min_[i];
  kv.v_scale = &v_scale_[i];
  kv.v_min = &v_min_[i];
  kernels().attend(kv, q, n_pos, scores, out);
}

void KvCache::attend_float(int layer, int kv_head, const float* q, int n_pos, float* scores,
                           float* out) const {
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
  const size_t stride = static_cast<size_t>(n_kv_heads_) * head_dim_;
  const size_t base = (slot(layer, 0) + kv_head) * head_dim_;
  const float* k = &kf_[base];
  const float* v = &vf_[base];
  for (int t = 0; t < n_pos; ++t) {
    float dot = 0.0f;
    for (int i = 0; i < head_dim_; ++i) dot += q[i] * k[t * stride + i];
    scores[t] = dot * scale;
  }
  softmax(scores, n_pos);
  std::fill(out, out + head_dim_, 0.0f);
  for (int t = 0; t < n_pos; ++t)
    for (int i = 0; i < head_dim_; ++i) out[i] += scores[t] * v[t * stride + i];
}

}  // namespace rotor
