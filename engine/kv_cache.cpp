#include "engine/kv_cache.h"

#include <algorithm>
#include <cmath>

#include "engine/ops.h"

namespace rotor {

KvCache::KvCache(int n_layers, int ctx, int n_kv_heads, int head_dim)
    : ctx_(ctx),
      n_kv_heads_(n_kv_heads),
      head_dim_(head_dim),
      k_(static_cast<size_t>(n_layers) * ctx * n_kv_heads * head_dim),
      v_(k_.size()) {}

size_t KvCache::offset(int layer, int pos) const {
  return (static_cast<size_t>(layer) * ctx_ + pos) * n_kv_heads_ * head_dim_;
}

void KvCache::store(int layer, int pos, const float* k, const float* v) {
  const size_t o = offset(layer, pos), n = static_cast<size_t>(n_kv_heads_) * head_dim_;
  std::copy(k, k + n, k_.begin() + o);
  std::copy(v, v + n, v_.begin() + o);
}

void KvCache::attend(int layer, int kv_head, const float* q, int n_pos, float* scores,
                     float* out) const {
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
  const size_t stride = static_cast<size_t>(n_kv_heads_) * head_dim_;
  const float* k = &k_[offset(layer, 0) + static_cast<size_t>(kv_head) * head_dim_];
  const float* v = &v_[offset(layer, 0) + static_cast<size_t>(kv_head) * head_dim_];
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
