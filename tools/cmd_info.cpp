// rotor info: what a model file holds.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "engine/format/manifest.h"
#include "engine/import/load_model.h"
#include "engine/quantized_linear.h"
#include "tools/args.h"
#include "tools/commands.h"

namespace rotor {

int cmd_info(int argc, char** argv) {
  Args args("info", "MODEL [options]",
            "Describes a model: format, architecture, shapes, parameter count, storage type,\n"
            "file size, tokenizer, and for compact files the quantization recipe.");
  args.positionals("MODEL", 1);
  args.option("tokenizer", 0, "FILE", "SentencePiece model", "tokenizer.model beside MODEL");
  args.flag("json", 0, "print one JSON object");
  if (!args.parse(argc, argv)) return 0;

  LoadOptions options;
  options.tokenizer_path = args.get("tokenizer");
  options.require_tokenizer = false;
  auto model = load_model(args.positional()[0], options);
  const ModelConfig& c = model->config;
  nlohmann::json j = {
      {"path", model->path},
      {"format", model->format},
      {"architecture", "llama"},
      {"dtype", model->dtype},
      {"file_bytes", model->file_bytes},
      {"parameters", c.parameter_count()},
      {"dim", c.dim},
      {"hidden_dim", c.hidden_dim},
      {"n_layers", c.n_layers},
      {"n_heads", c.n_heads},
      {"n_kv_heads", c.n_kv_heads},
      {"head_dim", c.head_dim()},
      {"vocab_size", c.vocab_size},
      {"max_seq_len", c.max_seq_len},
      {"rope_theta", c.rope_theta},
      {"norm_eps", c.norm_eps},
      {"tied_embeddings", c.tied_embeddings},
      {"tokenizer", model->tokenizer_path},
  };
  // Layers whose o_proj quantizes its input with clip factors per head.
  int head_clips = 0;
  for (const LayerWeights& l : model->layers) {
    const auto* wo = dynamic_cast<const QuantizedLinear*>(l.wo.get());
    if (wo && !wo->activation().segment_clips.empty()) ++head_clips;
  }
  if (model->format_version > 0) j["format_version"] = model->format_version;
  const ResidualBlocks blocks = model->layers.empty() ? ResidualBlocks{} : model->layers[0].resid_attn;
  if (blocks) j["residual_blocks"] = blocks.f16 ? "f16" : "f32";
  if (model->quantized) {
    j["recipe"] = format::recipe_to_json(model->recipe);
    j["o_proj_head_clip_layers"] = head_clips;
  }
  if (!model->chat_template.empty()) j["chat_template"] = model->chat_template;
  if (args.has("json")) {
    std::puts(j.dump().c_str());
    return 0;
  }
  const char* attention = c.n_kv_heads == c.n_heads ? "multi-head" : "grouped-query";
  std::printf("model       %s\n", model->path.c_str());
  const std::string version =
      model->format_version > 0 ? " version " + std::to_string(model->format_version) : "";
  std::printf("format      %s%s, %s weights, %.2f MB on disk\n", model->format.c_str(),
              version.c_str(), model->dtype.c_str(), model->file_bytes / 1e6);
  std::printf("arch        llama: %d layers, dim %d, MLP %d, vocab %d, %s classifier\n",
              c.n_layers, c.dim, c.hidden_dim, c.vocab_size,
              c.tied_embeddings ? "tied" : "untied");
  std::printf("attention   %s: %d heads, %d kv heads, head size %d\n", attention, c.n_heads,
              c.n_kv_heads, c.head_dim());
  std::printf("positions   %d (RoPE theta %g), RMSNorm eps %g\n", c.max_seq_len, c.rope_theta,
              c.norm_eps);
  std::printf("parameters  %llu\n", static_cast<unsigned long long>(c.parameter_count()));
  std::printf("tokenizer   %s\n",
              model->tokenizer_path.empty() ? "(none found)" : model->tokenizer_path.c_str());
  if (model->quantized) {
    const Recipe& r = model->recipe;
    const std::string group = r.group ? "groups of " + std::to_string(r.group) : "per channel";
    std::printf("weights     %d-bit %s %s, %s; embedding %d-bit, lm_head %d-bit\n", r.w_bits,
                r.w_sym ? "symmetric" : "asymmetric", group.c_str(), r.weights.c_str(),
                r.embed_bits, r.classifier_bits);
    const std::string k_layout =
        r.kv_k_group ? "K per channel in groups of " + std::to_string(r.kv_k_group) : "K per token";
    const std::string clips = head_clips ? " (o_proj clipped per head in " +
                                               std::to_string(head_clips) + " of " +
                                               std::to_string(c.n_layers) + " layers)"
                                         : "";
    std::printf("runtime     activations %d-bit%s, KV cache %d-bit (%s)\n", r.a_bits,
                clips.c_str(), r.kv_bits, k_layout.c_str());
    const OnlineRotations& on = model->online;
    std::string steps;
    auto step = [&](bool present, const char* what) {
      if (present) steps += (steps.empty() ? "" : ", ") + std::string(what);
    };
    step(on.qk != nullptr, "R3 on Q/K");
    step(on.down != nullptr, "R4 on the down_proj input");
    step(!model->layers.empty() && model->layers[0].down_scale, "BDQ scales");
    step(static_cast<bool>(blocks), blocks.f16 ? "residual blocks (f16)" : "residual blocks (f32)");
    std::printf("rotation    %s%s; online steps: %s\n", r.rotation.c_str(), r.bdq ? " + BDQ" : "",
                steps.empty() ? "none" : steps.c_str());
    if (!r.calib.empty())
      std::printf("calibration %s, %d windows of %d tokens, seed %llu\n", r.calib.c_str(),
                  r.calib_windows, r.calib_ctx, static_cast<unsigned long long>(r.seed));
    if (r.tune_epochs > 0)
      std::printf("tuning      weight %s tuned end to end towards the float model, %d epochs\n",
                  r.tune_rounding ? "scales and rounding" : "scales", r.tune_epochs);
    if (!model->chat_template.empty())
      std::printf("chat        %s template\n", model->chat_template.c_str());
    std::printf("written by  rotor %s\n", r.tool_version.c_str());
  }
  return 0;
}

}  // namespace rotor
