// Keys and values of every processed position, per layer, and attention that reads them.
// fp32 for now; the quantized layouts of later formats replace the storage behind this class.
#pragma once
#include <cstddef>
#include <vector>

namespace rotor {

class KvCache {
 public:
  KvCache(int n_layers, int ctx, int n_kv_heads, int head_dim);

  int ctx() const { return ctx_; }
  // Stores one position's keys and values (n_kv_heads · head_dim each, K after RoPE).
  void store(int layer, int pos, const float* k, const float* v);
  // out[head_dim] = softmax(q · Kᵀ / sqrt(head_dim)) · V over positions [0, n_pos) of kv_head.
  // scores is scratch space of at least n_pos floats.
  void attend(int layer, int kv_head, const float* q, int n_pos, float* scores, float* out) const;

 private:
  size_t offset(int layer, int pos) const;
  int ctx_, n_kv_heads_, head_dim_;
  std::vector<float> k_, v_;  // [layer][pos][kv_head][head_dim]
};

}  // namespace rotor
