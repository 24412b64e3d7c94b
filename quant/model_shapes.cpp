#include "quant/model_shapes.h"

#include "engine/error.h"

namespace rotor {

namespace {
ModelConfig shape(int dim, int hidden, int layers, int heads, int kv_heads, int vocab, int ctx,
                  float rope_theta, int bos, int eos) {
  ModelConfig c;
  c.dim = dim;
  c.hidden_dim = hidden;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.vocab_size = vocab;
  c.max_seq_len = ctx;
  c.norm_eps = 1e-5f;
  c.rope_theta = rope_theta;
  c.bos_id = bos;
  c.eos_id = eos;
  c.tied_embeddings = false;
  return c;
}
}  // namespace

const std::vector<NamedShape>& model_shapes() {
  static const std::vector<NamedShape> shapes = {
      {"tinyllama-1.1b", shape(2048, 5632, 22, 32, 4, 32000, 2048, 10000.0f, 1, 2)},
      {"llama2-7b", shape(4096, 11008, 32, 32, 32, 32000, 4096, 10000.0f, 1, 2)},
      {"llama3-8b", shape(4096, 14336, 32, 32, 8, 128256, 8192, 500000.0f, 128000, 128001)},
  };
  return shapes;
}

ModelConfig model_shape(const std::string& name) {
  std::string names;
  for (const NamedShape& s : model_shapes()) {
    if (name == s.name) return s.config;
    names += (names.empty() ? "" : ", ") + std::string(s.name);
  }
  throw Error("unknown model shape '" + name + "' (known: " + names + ")");
}

}  // namespace rotor
