#include "quant/quantize_model.h"

#include <chrono>
#include <memory>

#include "engine/error.h"
#include "quant/calibration.h"
#include "quant/rotor_writer.h"
#include "quant/weight_quantizer.h"

namespace rotor {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<float> weights_of(const Linear& l) {
  std::vector<float> w(static_cast<size_t>(l.out_features()) * l.in_features());
  l.to_float(w.data());
  return w;
}

// Float storage of the embedding / classifier for embed_bits 16 or 32.
void add_float(RotorFileWriter& out, int bits, const std::string& name, const std::vector<float>& t,
               std::vector<int64_t> shape) {
  if (bits == 16)
    out.add_f16(name, t, shape);
  else
    out.add_f32(name, t, shape);
}

}  // namespace

QuantizeReport quantize_model(const Model& src, const Tokenizer& tok, const Recipe& r,
                              const std::string& calib_text, const std::string& chat_template,
                              const std::string& out_path,
                              const std::function<void(const QuantizeProgress&)>& progress) {
  const auto start = Clock::now();
  const ModelConfig& c = src.config;
  const int D = c.dim, V = c.vocab_size, hd = c.head_dim();
  const bool gptq = r.weights == "gptq";

  std::unique_ptr<HessianCollector> hessians;
  if (gptq) {
    if (calib_text.empty()) throw Error("GPTQ needs calibration text (--calib FILE)");
    const auto windows = calibration_windows(tok, calib_text, r.calib_windows, r.calib_ctx,
                                             r.seed, c.bos_id);
    hessians = std::make_unique<HessianCollector>(c);
    auto t = Clock::now();
    hessians->collect(src, windows, [&](int done, int total) {
      progress({"calibrate", done, total, since(t)});
      t = Clock::now();
    });
  }

  RotorFileWriter out(c, r, src.tokenizer_proto);
  if (!chat_template.empty()) out.set_chat_template(chat_template);
  // Embedding (and the tied classifier, which reads the same matrix).
  std::vector<float> emb(static_cast<size_t>(V) * D);
  for (int v = 0; v < V; ++v) src.embedding->lookup(v, &emb[static_cast<size_t>(v) * D]);
  // The classifier's input stays at 8 bits even in A4 recipes (METHODS.md §1: kept in higher
  // precision); with float activations it stays float.
  const ActQuantParams head_act{r.a_bits >= 16 ? 16 : 8, 0, 0, 1.0f, 1.0f};
  auto add_head = [&](const std::string& name, const std::vector<float>& t) {
    if (r.embed_bits == 8) {
      QuantizedMatrix m = quantize_rtn(t.data(), V, D, {8, 0, false, 0});
      ActQuantParams stored = head_act;
      stored.segment = m.cols_padded;
      out.add_packed(name, m, stored);
    } else {
      add_float(out, r.embed_bits, name, t, {V, D});
    }
  };
  add_head("tok_embeddings", emb);

  const WeightQuantSpec spec{r.w_bits, r.group, r.w_sym, 0};
  WeightQuantSpec o_spec = spec;
  o_spec.act_segment = hd;  // o_proj's input is quantized per head
  const ActQuantParams act{r.a_bits, 0, 0, 1.0f, 1.0f};
  const ActQuantParams o_act{r.a_bits, hd, 0, 1.0f, 1.0f};

  for (int i = 0; i < c.n_layers; ++i) {
    auto t = Clock::now();
    const LayerWeights& l = src.layers[i];
    const std::string p = "layers." + std::to_string(i) + ".";
    auto quantize = [&](const std::string& name, const Linear& lin, LinearInput input,
                        const WeightQuantSpec& s, const ActQuantParams& a) {
      const std::vector<float> w = weights_of(lin);
      QuantizedMatrix m =
          gptq ? quantize_gptq(w.data(), lin.out_features(), lin.in_features(),
                               hessians->hessian(i, input), s)
               : quantize_rtn(w.data(), lin.out_features(), lin.in_features(), s);
      ActQuantParams stored = a;
      if (stored.segment == 0) stored.segment = m.cols_padded;
      out.add_packed(p + name, m, stored);
    };
    out.add_f32(p + "attn_norm", std::vector<float>(l.attn_norm, l.attn_norm + D), {D});
    quantize("wq", *l.wq, LinearInput::kAttention, spec, act);
    quantize("wk", *l.wk, LinearInput::kAttention, spec, act);
    quantize("wv", *l.wv, LinearInput::kAttention, spec, act);
    quantize("wo", *l.wo, LinearInput::kAttentionOut, o_spec, o_act);
    out.add_f32(p + "ffn_norm", std::vector<float>(l.ffn_norm, l.ffn_norm + D), {D});
    quantize("w_gate", *l.w_gate, LinearInput::kMlp, spec, act);
    quantize("w_up", *l.w_up, LinearInput::kMlp, spec, act);
    quantize("w_down", *l.w_down, LinearInput::kMlpDown, spec, act);
    progress({"quantize", i + 1, c.n_layers, since(t)});
  }
  out.add_f32("final_norm", std::vector<float>(src.final_norm, src.final_norm + D), {D});
  if (!c.tied_embeddings) add_head("classifier", weights_of(*src.classifier));

  QuantizeReport report;
  report.file_bytes = out.write(out_path);
  report.bits_per_weight = 8.0 * report.file_bytes / c.parameter_count();
  report.seconds = since(start);
  return report;
}

}  // namespace rotor
