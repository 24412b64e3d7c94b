#include "engine/config.h"

#include "engine/error.h"

namespace rotor {

namespace {
// Limits far above any real LLaMA, low enough that size arithmetic cannot overflow.
constexpr int kMaxWidth = 1 << 20;
constexpr int kMaxLayers = 4096;
constexpr int kMaxVocab = 1 << 22;
constexpr int kMaxPositions = 1 << 22;

void check_range(const std::string& where, const char* name, int v, int lo, int hi) {
  if (v < lo || v > hi)
    throw Error(where + ": " + name + " = " + std::to_string(v) + " is out of range [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "]");
}
}  // namespace

void ModelConfig::validate(const std::string& where) const {
  check_range(where, "dim", dim, 1, kMaxWidth);
  check_range(where, "hidden_dim", hidden_dim, 1, kMaxWidth);
  check_range(where, "n_layers", n_layers, 1, kMaxLayers);
  check_range(where, "n_heads", n_heads, 1, dim);
  check_range(where, "n_kv_heads", n_kv_heads, 1, n_heads);
  check_range(where, "vocab_size", vocab_size, 1, kMaxVocab);
  check_range(where, "max_seq_len", max_seq_len, 1, kMaxPositions);
  if (dim % n_heads != 0)
    throw Error(where + ": dim " + std::to_string(dim) + " is not a multiple of n_heads " +
                std::to_string(n_heads));
  if (head_dim() % 2 != 0)
    throw Error(where + ": head size " + std::to_string(head_dim()) + " is odd; RoPE needs pairs");
  if (n_heads % n_kv_heads != 0)
    throw Error(where + ": n_heads " + std::to_string(n_heads) +
                " is not a multiple of n_kv_heads " + std::to_string(n_kv_heads));
  if (!(norm_eps > 0.0f && norm_eps < 1.0f))
    throw Error(where + ": rms_norm_eps " + std::to_string(norm_eps) + " is not in (0, 1)");
  if (!(rope_theta > 1.0f && rope_theta < 1e12f))
    throw Error(where + ": rope_theta " + std::to_string(rope_theta) + " is out of range");
  if (bos_id < 0 || bos_id >= vocab_size || eos_id < 0 || eos_id >= vocab_size)
    throw Error(where + ": bos/eos ids (" + std::to_string(bos_id) + ", " +
                std::to_string(eos_id) + ") are outside the vocabulary");
}

uint64_t ModelConfig::parameter_count() const {
  const uint64_t d = dim, h = hidden_dim, kv = kv_dim(), v = vocab_size;
  uint64_t per_layer = d * d * 2 + d * kv * 2 + 3 * d * h + 2 * d;
  uint64_t total = v * d + per_layer * n_layers + d;
  if (!tied_embeddings) total += v * d;
  return total;
}

}  // namespace rotor
