#include "quant/quantize_model.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>

#include "engine/error.h"
#include "engine/kv_cache.h"
#include "quant/bdq_model.h"
#include "quant/calibration.h"
#include "quant/float_model.h"
#include "quant/layer_error.h"
#include "quant/rotate_model.h"
#include "quant/rotations.h"
#include "quant/rotor_writer.h"
#include "quant/weight_tuning.h"
#include "quant/weight_quantizer.h"

namespace rotor {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Calibration rows kept per input for the activation clip search.
constexpr int kClipSampleRows = 512;

// Float storage for 16/32-bit tensors.
void add_float(RotorFileWriter& out, int bits, const std::string& name, const std::vector<float>& t,
               std::vector<int64_t> shape) {
  if (bits == 16)
    out.add_f16(name, t, shape);
  else
    out.add_f32(name, t, shape);
}

}  // namespace

bool recipe_calibrates(const Recipe& r) {
  return r.weights == "gptq" || r.rotation == "psot" || r.rotation == "psot-layer" || r.bdq;
}

QuantizeReport quantize_model(const Model& src, const Tokenizer& tok, const Recipe& r,
                              const QuantizeInputs& in, const std::string& out_path,
                              const std::function<void(const QuantizeProgress&)>& progress) {
  const auto start = Clock::now();
  const ModelConfig& c = src.config;
  const int D = c.dim, V = c.vocab_size, KV = c.kv_dim(), I = c.hidden_dim, hd = c.head_dim();
  const bool float_weights = r.w_bits >= 16;
  const bool gptq = r.weights == "gptq" && !float_weights;
  // Activation clip factors are searched whenever there is calibration text (else 1.0).
  const bool clip_search = r.a_bits < 16 && !float_weights && !in.calib_text.empty();

  KvCache::check_shape(c.head_dim(), r.kv_bits, r.kv_k_group);  // a file that runs
  if (r.rotation != "none") check_rotatable(c, in.hadamard_dir);
  if (recipe_calibrates(r) && in.calib_text.empty())
    throw Error("this recipe calibrates (GPTQ, PSOT or BDQ): name a text with --calib FILE");
  std::vector<std::vector<int>> windows;
  if (!in.calib_text.empty())
    windows = calibration_windows(tok, in.calib_text, r.calib_windows, r.calib_ctx, r.seed, c.bos_id);

  // The transforms work on a float copy; each keeps the model's function exact.
  FloatModel fm = float_model_of(src);
  const bool transformed = r.rotation != "none" || r.bdq;
  if (transformed) fold_norms(fm);
  if (r.bdq && r.rotation != "none") apply_bdq(fm, r, windows, BdqInputs::kOutputSides, progress);
  if (r.rotation != "none") rotate_model(fm, r, windows, in.hadamard_dir, progress);
  if (r.bdq) apply_bdq(fm, r, windows, BdqInputs::kAll, progress);

  // The linears' inputs: Hessians for GPTQ, samples for the clip search. Calibration is
  // sequential (one pass per layer): layer i's inputs come from qfm, a copy of fm whose layers
  // before i already hold their dequantized weights, so each layer is fitted to the inputs the
  // quantized model will feed it rather than to the float model's.
  const bool calibrate = gptq || clip_search;
  // Weight tuning trains the quantized model qfm towards fm, so it needs qfm too.
  const bool tune = r.tune_epochs > 0 && !float_weights && !windows.empty();
  std::unique_ptr<HessianCollector> hessians;
  std::unique_ptr<ActivationRecorder> samples;
  FloatModel qfm;
  if (calibrate || tune) qfm = fm;
  auto calibrate_layer_inputs = [&]() {
    std::vector<CalibrationObserver*> observers;
    if (gptq) {
      hessians = std::make_unique<HessianCollector>(c, kLayerInputs);
      observers.push_back(hessians.get());
    }
    if (clip_search) {
      const size_t tokens = windows.size() * windows.front().size();
      samples = std::make_unique<ActivationRecorder>(
          c.n_layers, kLayerInputs, static_cast<int>(std::max<size_t>(1, tokens / kClipSampleRows)));
      observers.push_back(samples.get());
    }
    const std::unique_ptr<Model> model = to_model(qfm);
    auto t = Clock::now();
    run_calibration(*model, windows, observers, [&](int done, int total) {
      progress({"calibrate", done, total, since(t), ""});
      t = Clock::now();
    });
  };

  ModelConfig out_config = c;
  out_config.tied_embeddings = c.tied_embeddings && !transformed && r.classifier_bits == r.embed_bits;
  Recipe written = r;  // what was done: no tuning without calibration windows or quantized weights
  if (!tune) {
    written.tune_epochs = 0;
    written.tune_rounding = false;
  }
  RotorFileWriter out(out_config, written, src.tokenizer_proto);
  if (!in.chat_template.empty()) out.set_chat_template(in.chat_template);
  out.add_online_hadamard("qk_hadamard", fm.qk_hadamard);
  out.add_online_hadamard("down_hadamard", fm.down_hadamard);
  out.set_resid_blocks(fm.resid_blocks);

  // The embedding and classifier: 8-bit rows read by 8-bit activations (METHODS.md §1: kept
  // in higher precision even in A4 recipes), floats, or on request 4-bit rows (in the layers'
  // groups); a 4-bit classifier shrinks what decode reads per token.
  const ActQuantParams head_act{r.a_bits >= 16 ? 16 : 8, 0, 0, 1.0f, 1.0f};
  auto add_packed_head = [&](const std::string& name, const QuantizedMatrix& m) {
    ActQuantParams stored = head_act;
    stored.segment = m.cols_padded;
    out.add_packed(name, m, stored);
  };
  if (r.embed_bits <= 8)
    add_packed_head("tok_embeddings", quantize_rtn(fm.embedding.data(), V, D, head_quant_spec(r.embed_bits, r.group)));
  else
    add_float(out, r.embed_bits, "tok_embeddings", fm.embedding, {V, D});

  // The layers' tensors are written after weight tuning has adjusted them: `writes` queues each
  // write in file order, `linears` keeps the quantized matrices (a deque: stable addresses), and
  // the float vectors are read from `final_model` when written.
  struct PackedLinear {
    std::string name;
    QuantizedMatrix matrix;
    ActQuantParams act;
  };
  std::deque<PackedLinear> linears;
  std::vector<TunedLinear> tuned;
  std::vector<std::function<void()>> writes;
  const FloatModel& final_model = tune ? qfm : fm;

  const WeightQuantSpec spec{r.w_bits, r.group, r.w_sym, 0};
  WeightQuantSpec o_spec = spec;
  o_spec.act_segment = hd;  // o_proj's input is quantized per head
  const ActQuantParams act{r.a_bits, 0, 0, 1.0f, 1.0f};
  const ActQuantParams o_act{r.a_bits, hd, 0, 1.0f, 1.0f};

  for (int i = 0; i < c.n_layers; ++i) {
    auto t = Clock::now();
    const FloatLayer& l = fm.layers[i];
    if (calibrate) calibrate_layer_inputs();
    FloatLayer unused;  // the dequantized weights' destination when nothing calibrates on them
    FloatLayer& ql = calibrate || tune ? qfm.layers[i] : unused;
    const std::string p = "layers." + std::to_string(i) + ".";
    // One linear: its name, its float weights and where its dequantized weights go.
    struct Target {
      std::string name;
      const std::vector<float>* w;
      std::vector<float>* deq;
      std::vector<float> LayerGrads::*grad;
    };
    // The linears reading one input: quantized weights, then the input's clip factors chosen
    // against all of them together.
    auto quantize = [&](LinearInput input, const std::vector<Target>& ws, const std::vector<int>& outs,
                        const WeightQuantSpec& s, const ActQuantParams& a) {
      const int cols = static_cast<int>(ws[0].w->size() / outs[0]);
      if (float_weights) {
        for (const Target& lin : ws)
          writes.push_back([&, p, lin, cols] {
            add_float(out, r.w_bits, p + lin.name, *lin.w, {static_cast<int64_t>(lin.w->size() / cols), cols});
          });
        return;
      }
      std::vector<QuantizedMatrix> ms;
      std::vector<const float*> w, wq;
      for (size_t k = 0; k < ws.size(); ++k) {
        ms.push_back(gptq ? quantize_gptq(ws[k].w->data(), outs[k], cols, hessians->hessian(i, input), s)
                          : quantize_rtn(ws[k].w->data(), outs[k], cols, s));
        ws[k].deq->resize(static_cast<size_t>(outs[k]) * cols);
        dequantize_rows(ms[k].view(), 0, outs[k], ws[k].deq->data());
        w.push_back(ws[k].w->data());
        wq.push_back(ws[k].deq->data());
      }
      ActQuantParams stored = a;
      if (clip_search) {
        const ActivationRecorder::Rows& x = samples->rows(i, input);
        stored = choose_act_clip(x.data.data(), x.n(), cols, w, wq, outs, a);
        if (a.segment > 0)  // o_proj: then a pair per head
          stored = choose_segment_clips(x.data.data(), x.n(), cols, w, wq, outs, stored,
                                        ms[0].cols_padded / a.segment);
      }
      if (stored.segment == 0) stored.segment = ms[0].cols_padded;
      for (size_t k = 0; k < ms.size(); ++k) {
        linears.push_back({p + ws[k].name, std::move(ms[k]), stored});
        const PackedLinear* lin = &linears.back();
        tuned.push_back({i, ws[k].grad, &linears.back().matrix, ws[k].deq});
        writes.push_back([&out, lin] { out.add_packed(lin->name, lin->matrix, lin->act); });
      }
    };
    // A float vector of this layer, as it is when written.
    auto write_vector = [&](const std::string& name, std::vector<float> FloatLayer::*v) {
      writes.push_back([&, i, p, name, v] {
        const std::vector<float>& vec = final_model.layers[i].*v;
        if (!vec.empty()) out.add_f32(p + name, vec, {static_cast<int64_t>(vec.size())});
      });
    };
    write_vector("attn_norm", &FloatLayer::attn_norm);
    quantize(LinearInput::kAttention,
             {{"wq", &l.wq, &ql.wq, &LayerGrads::wq}, {"wk", &l.wk, &ql.wk, &LayerGrads::wk},
              {"wv", &l.wv, &ql.wv, &LayerGrads::wv}},
             {D, KV, KV}, spec, act);
    quantize(LinearInput::kAttentionOut, {{"wo", &l.wo, &ql.wo, &LayerGrads::wo}}, {D}, o_spec, o_act);
    write_vector("ffn_norm", &FloatLayer::ffn_norm);
    quantize(LinearInput::kMlp,
             {{"w_gate", &l.w_gate, &ql.w_gate, &LayerGrads::w_gate}, {"w_up", &l.w_up, &ql.w_up, &LayerGrads::w_up}},
             {I, I}, spec, act);
    quantize(LinearInput::kMlpDown, {{"w_down", &l.w_down, &ql.w_down, &LayerGrads::w_down}}, {D}, spec, act);
    write_vector("down_scale", &FloatLayer::down_scale);
    // The residual blocks in f16 (decode reads them for every token), in f32 with float weights.
    const int64_t b = fm.resid_blocks, n = D / fm.resid_blocks;
    const int resid_bits = r.w_bits == 32 ? 32 : 16;
    const FloatLayer* layer = &l;
    if (!l.resid_attn.empty())
      writes.push_back([&out, p, b, n, layer, resid_bits] {
        add_float(out, resid_bits, p + "resid_attn", layer->resid_attn, {b, n, n});
      });
    if (!l.resid_mlp.empty())
      writes.push_back([&out, p, b, n, layer, resid_bits] {
        add_float(out, resid_bits, p + "resid_mlp", layer->resid_mlp, {b, n, n});
      });
    progress({"quantize", i + 1, c.n_layers, since(t), ""});
  }
  // An untied classifier in 4 or 8 bits. 4-bit rows are fitted by GPTQ to the inputs the
  // quantized layers give it (one more calibration pass); 8-bit rows are rounded to nearest.
  // Weight tuning against the 4-bit rows instead of the float ones was tried: stories260K ppl
  // 5.9851 against 5.9849 (docs/QUALITY.md).
  QuantizedMatrix classifier;
  if (!out_config.tied_embeddings && r.classifier_bits <= 8) {
    const WeightQuantSpec s = head_quant_spec(r.classifier_bits, r.group);
    if (gptq && r.classifier_bits == 4) {
      HessianCollector h(c, {LinearInput::kClassifier});
      auto t = Clock::now();
      run_calibration(*to_model(qfm), windows, {&h}, [&](int done, int total) {
        progress({"calibrate classifier", done, total, since(t), ""});
        t = Clock::now();
      });
      classifier = quantize_gptq(fm.classifier.data(), V, D, h.hessian(c.n_layers, LinearInput::kClassifier), s);
    } else {
      classifier = quantize_rtn(fm.classifier.data(), V, D, s);
    }
  }
  if (tune) {
    WeightTuningOptions opt;
    opt.epochs = r.tune_epochs;
    opt.round_lr = r.tune_rounding ? kRoundingLearningRate : 0.0f;
    opt.seed = r.seed;
    auto t = Clock::now();
    int total = 0;
    const WeightTuningReport rep = tune_weights(fm, &qfm, tuned, windows, opt, [&](int step, int steps, double) {
      progress({"tune weights", step, steps, since(t), ""});
      total = steps;
      t = Clock::now();
    });
    char note[192];
    std::snprintf(note, sizeof note,
                  "weight tuning: KL to the float model %.4f (first epoch) -> %.4f (epoch %d), %.2f%% of codes changed",
                  rep.kl_first, rep.kl_last, r.tune_epochs, 100.0 * rep.codes_changed / std::max<size_t>(1, rep.weights));
    progress({"tune weights", total, total, 0.0, note});
  }
  for (const std::function<void()>& write : writes) write();
  out.add_f32("final_norm", final_model.final_norm, {D});
  if (!out_config.tied_embeddings) {
    if (r.classifier_bits <= 8)
      add_packed_head("classifier", classifier);
    else
      add_float(out, r.classifier_bits, "classifier", fm.classifier, {V, D});
  }

  QuantizeReport report;
  report.file_bytes = out.write(out_path);
  report.bits_per_weight = 8.0 * report.file_bytes / c.parameter_count();
  report.seconds = since(start);
  return report;
}

}  // namespace rotor
