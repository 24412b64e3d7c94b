// Hugging Face LLaMA directories: config.json, one or more *.safetensors (with or without
// model.safetensors.index.json) in F32/F16/BF16, and tokenizer.model beside them.
// HF stores q/k rows in rotate-half order; they are permuted back to the interleaved pairs the
// engine's RoPE uses, so both forms of a model give the same logits.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/error.h"
#include "engine/import/load_model.h"
#include "engine/import/safetensors.h"

namespace rotor {

namespace {

using nlohmann::json;

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": missing (a Hugging Face model directory needs it)");
  try {
    return json::parse(in);
  } catch (const json::exception&) {
    throw Error(path + ": not valid JSON");
  }
}

template <typename T>
T field(const json& cfg, const std::string& path, const char* key, T fallback, bool required) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) {
    if (required) throw Error(path + ": missing field '" + key + "'");
    return fallback;
  }
  try {
    // eos_token_id may be a list; the first entry is the end-of-sequence id.
    if (it->is_array() && !it->empty()) return (*it)[0].get<T>();
    return it->get<T>();
  } catch (const json::exception&) {
    throw Error(path + ": field '" + key + "' has the wrong type");
  }
}

ModelConfig parse_config(const std::string& path) {
  json cfg = read_json(path);
  if (!cfg.is_object()) throw Error(path + ": not a JSON object");
  std::string arch = "(none)";
  if (cfg.contains("architectures") && cfg["architectures"].is_array() &&
      !cfg["architectures"].empty() && cfg["architectures"][0].is_string())
    arch = cfg["architectures"][0].get<std::string>();
  std::string type = field<std::string>(cfg, path, "model_type", "", false);
  if (arch != "LlamaForCausalLM" && !(arch == "(none)" && type == "llama"))
    throw Error(path + ": unsupported architecture '" + arch +
                "' (rotor runs LlamaForCausalLM)");
  std::string act = field<std::string>(cfg, path, "hidden_act", "silu", false);
  if (act != "silu") throw Error(path + ": unsupported hidden_act '" + act + "' (need silu)");
  if (cfg.contains("rope_scaling") && !cfg["rope_scaling"].is_null())
    throw Error(path + ": rope_scaling is not supported yet");

  ModelConfig c;
  c.dim = field<int>(cfg, path, "hidden_size", 0, true);
  c.hidden_dim = field<int>(cfg, path, "intermediate_size", 0, true);
  c.n_layers = field<int>(cfg, path, "num_hidden_layers", 0, true);
  c.n_heads = field<int>(cfg, path, "num_attention_heads", 0, true);
  c.n_kv_heads = field<int>(cfg, path, "num_key_value_heads", c.n_heads, false);
  c.vocab_size = field<int>(cfg, path, "vocab_size", 0, true);
  // Defaults are those of transformers' LlamaConfig.
  c.max_seq_len = field<int>(cfg, path, "max_position_embeddings", 2048, false);
  c.norm_eps = field<float>(cfg, path, "rms_norm_eps", 1e-6f, false);
  c.rope_theta = field<float>(cfg, path, "rope_theta", 10000.0f, false);
  c.tied_embeddings = field<bool>(cfg, path, "tie_word_embeddings", false, false);
  c.bos_id = field<int>(cfg, path, "bos_token_id", 1, false);
  c.eos_id = field<int>(cfg, path, "eos_token_id", 2, false);
  c.validate(path);
  if (c.n_heads > 0 && cfg.contains("head_dim") && cfg["head_dim"].is_number_integer() &&
      cfg["head_dim"].get<int>() != c.head_dim())
    throw Error(path + ": head_dim " + std::to_string(cfg["head_dim"].get<int>()) +
                " != hidden_size / num_attention_heads (not supported)");
  return c;
}

std::vector<std::string> safetensors_files(const std::string& dir) {
  const std::string index_path = dir + "/model.safetensors.index.json";
  std::set<std::string> names;
  struct stat st;
  if (::stat(index_path.c_str(), &st) == 0) {
    json index = read_json(index_path);
    if (!index.contains("weight_map") || !index["weight_map"].is_object())
      throw Error(index_path + ": no weight_map object");
    for (auto& f : index["weight_map"]) {
      if (!f.is_string()) throw Error(index_path + ": weight_map values must be file names");
      std::string name = f.get<std::string>();
      if (name.find('/') != std::string::npos)
        throw Error(index_path + ": file name '" + name + "' leaves the model directory");
      names.insert(name);
    }
  } else {
    DIR* d = ::opendir(dir.c_str());
    if (!d) throw Error(dir + ": cannot list directory");
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      const std::string ext = ".safetensors";
      if (n.size() > ext.size() && n.compare(n.size() - ext.size(), ext.size(), ext) == 0)
        names.insert(n);
    }
    ::closedir(d);
  }
  if (names.empty()) throw Error(dir + ": no *.safetensors files in the model directory");
  std::vector<std::string> paths;
  for (const auto& n : names) paths.push_back(dir + "/" + n);
  return paths;
}

// HF's converter reorders each head's rows from interleaved pairs (2j, 2j+1) to rotate-half
// (j, j + hs/2); this puts them back.
std::vector<float> unpermute_rope_rows(const std::vector<float>& w, int heads, int head_dim,
                                       int cols) {
  std::vector<float> out(w.size());
  const int half = head_dim / 2;
  for (int h = 0; h < heads; ++h)
    for (int j = 0; j < half; ++j)
      for (int c = 0; c < 2; ++c) {
        const float* src = &w[(static_cast<size_t>(h) * head_dim + c * half + j) * cols];
        float* dst = &out[(static_cast<size_t>(h) * head_dim + 2 * j + c) * cols];
        std::copy(src, src + cols, dst);
      }
  return out;
}

}  // namespace

std::unique_ptr<Model> import_hf(const std::string& dir) {
  auto model = std::make_unique<Model>();
  model->config = parse_config(dir + "/config.json");
  const ModelConfig& c = model->config;

  SafeTensorsIndex index;
  uint64_t bytes = 0;
  for (const std::string& f : safetensors_files(dir)) {
    index.add_file(f);
    struct stat st;
    if (::stat(f.c_str(), &st) == 0) bytes += static_cast<uint64_t>(st.st_size);
  }
  model->path = dir;
  model->format = "hf-safetensors";
  model->dtype = index.dtype_of("model.embed_tokens.weight");
  model->file_bytes = bytes;

  const int64_t D = c.dim, I = c.hidden_dim, KV = c.kv_dim(), V = c.vocab_size;
  auto load = [&](const std::string& name, std::vector<int64_t> shape) {
    return model->keep(index.read_f32(name, shape));
  };
  auto linear = [&](const std::string& name, int64_t out, int64_t in) {
    return std::make_unique<LinearF32>(load(name, {out, in}), out, in);
  };

  const float* embeddings = load("model.embed_tokens.weight", {V, D});
  model->embedding = std::make_unique<EmbeddingF32>(embeddings, c.dim);
  model->layers.resize(c.n_layers);
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerWeights& l = model->layers[i];
    l.attn_norm = load(p + "input_layernorm.weight", {D});
    auto wq = index.read_f32(p + "self_attn.q_proj.weight", {D, D});
    auto wk = index.read_f32(p + "self_attn.k_proj.weight", {KV, D});
    l.wq = std::make_unique<LinearF32>(
        model->keep(unpermute_rope_rows(wq, c.n_heads, c.head_dim(), c.dim)), D, D);
    l.wk = std::make_unique<LinearF32>(
        model->keep(unpermute_rope_rows(wk, c.n_kv_heads, c.head_dim(), c.dim)), KV, D);
    l.wv = linear(p + "self_attn.v_proj.weight", KV, D);
    l.wo = linear(p + "self_attn.o_proj.weight", D, D);
    l.ffn_norm = load(p + "post_attention_layernorm.weight", {D});
    l.w_gate = linear(p + "mlp.gate_proj.weight", I, D);
    l.w_up = linear(p + "mlp.up_proj.weight", I, D);
    l.w_down = linear(p + "mlp.down_proj.weight", D, I);
  }
  model->final_norm = load("model.norm.weight", {D});
  if (c.tied_embeddings) {
    model->classifier = std::make_unique<LinearF32>(embeddings, V, D);
  } else {
    model->classifier = linear("lm_head.weight", V, D);
  }
  // Every tensor was converted into owned storage; the index unmaps its files on return.
  return model;
}

}  // namespace rotor
