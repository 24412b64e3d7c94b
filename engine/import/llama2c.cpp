// llama2.c v0 checkpoints: a header of 7 int32 (dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size, seq_len; a negative vocab_size means an untied classifier), then
// fp32 tensors in a fixed order. Weights are used in place from the mapping.
#include <cstring>
#include <memory>

#include "engine/error.h"
#include "engine/import/load_model.h"

namespace rotor {

namespace {

constexpr size_t kHeaderBytes = 7 * sizeof(int32_t);

// Hands out consecutive tensors of the mapped payload.
class Cursor {
 public:
  explicit Cursor(const float* p) : p_(p) {}
  const float* take(uint64_t count) {
    const float* t = p_;
    p_ += count;
    return t;
  }

 private:
  const float* p_;
};

}  // namespace

std::unique_ptr<Model> import_llama2c(const std::string& path, FileAccess access) {
  auto model = std::make_unique<Model>();
  model->mappings.push_back(std::make_unique<MappedFile>(path, access));
  const MappedFile& file = *model->mappings.back();
  if (file.size() < kHeaderBytes)
    throw Error(path + ": not a model file: " + std::to_string(file.size()) +
                " bytes is shorter than a llama2.c header");

  int32_t h[7];
  std::memcpy(h, file.data(), sizeof h);
  ModelConfig& c = model->config;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.tied_embeddings = h[5] > 0;
  c.vocab_size = h[5] > 0 ? h[5] : (h[5] == INT32_MIN ? 0 : -h[5]);
  c.max_seq_len = h[6];
  c.validate(path + ": not a llama2.c checkpoint (header)");

  const uint64_t d = c.dim, hid = c.hidden_dim, L = c.n_layers, kv = c.kv_dim(),
                 v = c.vocab_size, hs = c.head_dim(), seq = c.max_seq_len;
  const uint64_t floats = v * d + L * d + L * d * d + 2 * L * kv * d + L * d * d + L * d +
                          3 * L * hid * d + d + seq * hs /* freq_cis real+imag */ +
                          (c.tied_embeddings ? 0 : v * d);
  const uint64_t expected = kHeaderBytes + floats * sizeof(float);
  if (file.size() < expected)
    throw Error(path + ": truncated llama2.c checkpoint: " + std::to_string(file.size()) +
                " bytes, the header's shapes need " + std::to_string(expected));
  if (file.size() > expected)
    throw Error(path + ": not a llama2.c v0 checkpoint: " +
                std::to_string(file.size() - expected) +
                " bytes more than the header's shapes need");

  model->path = path;
  model->format = "llama2.c";
  model->dtype = "f32";
  model->file_bytes = file.size();

  Cursor cur(reinterpret_cast<const float*>(file.data() + kHeaderBytes));
  const float* embeddings = cur.take(v * d);
  model->embedding = std::make_unique<EmbeddingF32>(embeddings, c.dim);
  model->layers.resize(L);
  const int D = c.dim, I = c.hidden_dim, KV = c.kv_dim();
  for (auto& l : model->layers) l.attn_norm = cur.take(d);
  for (auto& l : model->layers) l.wq = std::make_unique<LinearF32>(cur.take(d * d), D, D);
  for (auto& l : model->layers) l.wk = std::make_unique<LinearF32>(cur.take(kv * d), KV, D);
  for (auto& l : model->layers) l.wv = std::make_unique<LinearF32>(cur.take(kv * d), KV, D);
  for (auto& l : model->layers) l.wo = std::make_unique<LinearF32>(cur.take(d * d), D, D);
  for (auto& l : model->layers) l.ffn_norm = cur.take(d);
  for (auto& l : model->layers) l.w_gate = std::make_unique<LinearF32>(cur.take(hid * d), I, D);
  for (auto& l : model->layers) l.w_down = std::make_unique<LinearF32>(cur.take(d * hid), D, I);
  for (auto& l : model->layers) l.w_up = std::make_unique<LinearF32>(cur.take(hid * d), I, D);
  model->final_norm = cur.take(d);
  cur.take(seq * hs);  // legacy RoPE tables; the engine computes its own from rope_theta
  const float* cls = c.tied_embeddings ? embeddings : cur.take(v * d);
  model->classifier = std::make_unique<LinearF32>(cls, c.vocab_size, D);
  return model;
}

}  // namespace rotor
