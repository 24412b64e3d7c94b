// Keys and values of every processed position, per layer, and attention that reads them.
// Stored per (position, KV head) as floats (bits ≥ 16) or as asymmetric 8- or 4-bit codes with
// a scale and minimum each (METHODS.md §1); attention reads the codes directly.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace rotor {

class KvCache {
 public:
  KvCache(int n_layers, int ctx, int n_kv_heads, int head_dim, int bits);

  int ctx() const { return ctx_; }
  int bits() const { return bits_; }
  // Stores one position's keys and values (n_kv_heads · head_dim each, K after RoPE).
  void store(int layer, int pos, const float* k, const float* v);
  // out[head_dim] = softmax(q · Kᵀ / sqrt(head_dim)) · V over positions [0, n_pos) of kv_head.
  // scores is scratch space of at least n_pos floats.
  void attend(int layer, int kv_head, const float* q, int n_pos, float* scores, float* out) const;

 private:
  size_t slot(int layer, int pos) const;  // index of (layer, pos, head 0)
  void attend_float(int layer, int kv_head, const float* q, int n_pos, float* scores,
                    float* out) const;

  int ctx_, n_kv_heads_, head_dim_, bits_;
  size_t head_bytes_;  // bytes of one quantized head vector
  std::vector<float> kf_, vf_;           // float storage: [layer][pos][head][head_dim]
  std::vector<uint8_t> kq_, vq_;         // code storage:  [layer][pos][head][head_bytes]
  std::vector<float> k_scale_, k_min_, v_scale_, v_min_;  // [layer][pos][head]
};

}  // namespace rotor
