#include "quant/float_model.h"

namespace rotor {

namespace {
std::vector<float> weights_of(const Linear& l) {
  std::vector<float> w(static_cast<size_t>(l.out_features()) * l.in_features());
  l.to_float(w.data());
  return w;
}

std::unique_ptr<Linear> borrow(const std::vector<float>& w, int out, int in) {
  return std::make_unique<LinearF32>(w.data(), out, in);
}
}  // namespace

FloatModel float_model_of(const Model& src) {
  const ModelConfig& c = src.config;
  const int D = c.dim, V = c.vocab_size;
  FloatModel fm;
  fm.config = c;
  fm.config.tied_embeddings = false;
  fm.embedding.resize(static_cast<size_t>(V) * D);
  for (int v = 0; v < V; ++v) src.embedding->lookup(v, &fm.embedding[static_cast<size_t>(v) * D]);
  for (const LayerWeights& l : src.layers) {
    FloatLayer f;
    f.attn_norm.assign(l.attn_norm, l.attn_norm + D);
    f.ffn_norm.assign(l.ffn_norm, l.ffn_norm + D);
    f.wq = weights_of(*l.wq);
    f.wk = weights_of(*l.wk);
    f.wv = weights_of(*l.wv);
    f.wo = weights_of(*l.wo);
    f.w_gate = weights_of(*l.w_gate);
    f.w_up = weights_of(*l.w_up);
    f.w_down = weights_of(*l.w_down);
    fm.layers.push_back(std::move(f));
  }
  fm.final_norm.assign(src.final_norm, src.final_norm + D);
  fm.classifier = weights_of(*src.classifier);
  return fm;
}

std::unique_ptr<HadamardTransform> make_hadamard(const HadamardSpec& spec) {
  if (spec.n == 0) return nullptr;
  return std::make_unique<HadamardTransform>(spec.n, spec.h_m, spec.seed);
}

std::unique_ptr<Model> to_model(const FloatModel& fm) {
  const ModelConfig& c = fm.config;
  const int D = c.dim, I = c.hidden_dim, KV = c.kv_dim(), V = c.vocab_size;
  auto m = std::make_unique<Model>();
  m->config = c;
  m->format = "float (quantizer)";
  m->dtype = "f32";
  m->embedding = std::make_unique<EmbeddingF32>(fm.embedding.data(), D);
  for (const FloatLayer& f : fm.layers) {
    LayerWeights l;
    l.attn_norm = f.attn_norm.data();
    l.ffn_norm = f.ffn_norm.data();
    l.wq = borrow(f.wq, D, D);
    l.wk = borrow(f.wk, KV, D);
    l.wv = borrow(f.wv, KV, D);
    l.wo = borrow(f.wo, D, D);
    l.w_gate = borrow(f.w_gate, I, D);
    l.w_up = borrow(f.w_up, I, D);
    l.w_down = borrow(f.w_down, D, I);
    if (!f.down_scale.empty()) l.down_scale = f.down_scale.data();
    if (!f.resid_attn.empty()) l.resid_attn.f32 = f.resid_attn.data();
    if (!f.resid_mlp.empty()) l.resid_mlp.f32 = f.resid_mlp.data();
    m->layers.push_back(std::move(l));
  }
  m->final_norm = fm.final_norm.data();
  m->classifier = borrow(fm.classifier, V, D);
  m->online.qk = make_hadamard(fm.qk_hadamard);
  m->online.down = make_hadamard(fm.down_hadamard);
  m->online.resid_blocks = fm.resid_blocks;
  return m;
}

}  // namespace rotor
