// The shape and constants of a LLaMA-family model, whatever file it came from.
#pragma once
#include <cstdint>
#include <string>

namespace rotor {

struct ModelConfig {
  int dim = 0;          // residual width D
  int hidden_dim = 0;   // MLP width I
  int n_layers = 0;
  int n_heads = 0;      // query heads H
  int n_kv_heads = 0;   // key/value heads G (G == H: multi-head, G < H: grouped-query)
  int vocab_size = 0;
  int max_seq_len = 0;  // positions the model was trained for
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  int bos_id = 1;
  int eos_id = 2;
  bool tied_embeddings = true;  // classifier shares the token embedding

  int head_dim() const { return dim / n_heads; }
  int kv_dim() const { return n_kv_heads * head_dim(); }

  // Throws Error("<where>: ...") when the shape cannot be a LLaMA model this engine runs.
  void validate(const std::string& where) const;
  // Weights of the transformer including embedding and (untied) classifier.
  uint64_t parameter_count() const;
};

}  // namespace rotor
