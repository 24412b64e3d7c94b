#include "engine/format/manifest.h"

#include "engine/error.h"

namespace rotor::format {

using nlohmann::json;

namespace {
template <typename T>
T get(const json& j, const char* key, const std::string& where) {
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    throw Error(where + ": manifest field '" + key + "' is missing or has the wrong type");
  }
}
}  // namespace

json config_to_json(const ModelConfig& c) {
  return {{"dim", c.dim},
          {"hidden_dim", c.hidden_dim},
          {"n_layers", c.n_layers},
          {"n_heads", c.n_heads},
          {"n_kv_heads", c.n_kv_heads},
          {"vocab_size", c.vocab_size},
          {"max_seq_len", c.max_seq_len},
          {"norm_eps", c.norm_eps},
          {"rope_theta", c.rope_theta},
          {"bos_id", c.bos_id},
          {"eos_id", c.eos_id},
          {"tied_embeddings", c.tied_embeddings}};
}

ModelConfig config_from_json(const json& j, const std::string& where) {
  ModelConfig c;
  c.dim = get<int>(j, "dim", where);
  c.hidden_dim = get<int>(j, "hidden_dim", where);
  c.n_layers = get<int>(j, "n_layers", where);
  c.n_heads = get<int>(j, "n_heads", where);
  c.n_kv_heads = get<int>(j, "n_kv_heads", where);
  c.vocab_size = get<int>(j, "vocab_size", where);
  c.max_seq_len = get<int>(j, "max_seq_len", where);
  c.norm_eps = get<float>(j, "norm_eps", where);
  c.rope_theta = get<float>(j, "rope_theta", where);
  c.bos_id = get<int>(j, "bos_id", where);
  c.eos_id = get<int>(j, "eos_id", where);
  c.tied_embeddings = get<bool>(j, "tied_embeddings", where);
  c.validate(where);
  return c;
}

json recipe_to_json(const Recipe& r) {
  return {{"w_bits", r.w_bits},       {"group", r.group},
          {"w_sym", r.w_sym},         {"weights", r.weights},
          {"a_bits", r.a_bits},       {"kv_bits", r.kv_bits},
          {"embed_bits", r.embed_bits}, {"classifier_bits", r.classifier_bits},
          {"kv_k_group", r.kv_k_group},
          {"rotation", r.rotation},   {"bdq", r.bdq},
          {"tune_epochs", r.tune_epochs}, {"tune_rounding", r.tune_rounding},
          {"calib", r.calib},
          {"calib_windows", r.calib_windows}, {"calib_ctx", r.calib_ctx},
          {"seed", r.seed},           {"tool_version", r.tool_version}};
}

Recipe recipe_from_json(const json& j, const std::string& where) {
  Recipe r;
  r.w_bits = get<int>(j, "w_bits", where);
  r.group = get<int>(j, "group", where);
  r.w_sym = get<bool>(j, "w_sym", where);
  r.weights = get<std::string>(j, "weights", where);
  r.a_bits = get<int>(j, "a_bits", where);
  r.kv_bits = get<int>(j, "kv_bits", where);
  r.embed_bits = get<int>(j, "embed_bits", where);
  // Absent in files written before the classifier had bits of its own.
  r.classifier_bits = j.contains("classifier_bits") ? get<int>(j, "classifier_bits", where) : r.embed_bits;
  r.kv_k_group = get<int>(j, "kv_k_group", where);
  r.rotation = get<std::string>(j, "rotation", where);
  r.bdq = get<bool>(j, "bdq", where);
  // Absent in files written before weight tuning existed, or before it learned the rounding.
  r.tune_epochs = j.contains("tune_epochs") ? get<int>(j, "tune_epochs", where) : 0;
  r.tune_rounding = j.contains("tune_rounding") && get<bool>(j, "tune_rounding", where);
  r.calib = get<std::string>(j, "calib", where);
  r.calib_windows = get<int>(j, "calib_windows", where);
  r.calib_ctx = get<int>(j, "calib_ctx", where);
  r.seed = get<uint64_t>(j, "seed", where);
  r.tool_version = get<std::string>(j, "tool_version", where);
  auto in = [](int v, std::initializer_list<int> ok) {
    for (int o : ok) if (v == o) return true;
    return false;
  };
  if (!in(r.w_bits, {4, 8, 16, 32}) || !in(r.a_bits, {4, 8, 16}) || !in(r.kv_bits, {4, 8, 16}) ||
      !in(r.embed_bits, {4, 8, 16, 32}) || !in(r.classifier_bits, {4, 8, 16, 32}))
    throw Error(where + ": recipe has unsupported bit widths");
  if (r.kv_k_group < 0 || r.kv_k_group > 4096)
    throw Error(where + ": recipe has an unsupported K cache group of " +
                std::to_string(r.kv_k_group) + " tokens");
  if (r.tune_epochs < 0) throw Error(where + ": recipe has a negative tune_epochs");
  if (r.rotation != "none" && r.rotation != "hadamard" && r.rotation != "psot" &&
      r.rotation != "psot-layer")
    throw Error(where + ": recipe names an unknown rotation '" + r.rotation + "'");
  return r;
}

}  // namespace rotor::format
