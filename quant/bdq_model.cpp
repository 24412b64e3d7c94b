#include "quant/bdq_model.h"

#include <chrono>
#include <cstdio>

#include "quant/bdq.h"
#include "quant/calibration.h"

namespace rotor {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Calibration rows kept per input for choosing scales and clips.
constexpr int kSampleRows = 1024;

void scale_columns(std::vector<float>& w, int cols, const std::vector<float>& s) {
  for (size_t r = 0; r < w.size() / cols; ++r)
    for (int j = 0; j < cols; ++j) w[r * cols + j] *= s[j];
}

void divide_rows(std::vector<float>& w, int cols, const std::vector<float>& s) {
  for (size_t r = 0; r < w.size() / cols; ++r)
    for (int j = 0; j < cols; ++j) w[r * cols + j] /= s[r];
}

}  // namespace

void apply_bdq(FloatModel& fm, const Recipe& r, const std::vector<std::vector<int>>& windows,
               BdqInputs inputs, const std::function<void(const QuantizeProgress&)>& progress) {
  const bool all = inputs == BdqInputs::kAll;
  const std::string stage = all ? "bdq" : "bdq (output sides)";
  const ModelConfig& c = fm.config;
  const int D = c.dim, I = c.hidden_dim, KV = c.kv_dim(), h = c.head_dim();
  const int group = c.n_heads / c.n_kv_heads;
  const bool online_down = fm.down_hadamard.n > 0;

  const size_t tokens = windows.size() * windows.front().size();
  ActivationRecorder rec(c.n_layers,
                         {LinearInput::kAttention, LinearInput::kAttentionOut, LinearInput::kMlp,
                          LinearInput::kMlpDown},
                         static_cast<int>(std::max<size_t>(1, tokens / kSampleRows)));
  {
    const std::unique_ptr<Model> model = to_model(fm);
    auto t = Clock::now();
    run_calibration(*model, windows, {&rec}, [&](int done, int total) {
      progress({stage + " calibrate", done, total, since(t), ""});
      t = Clock::now();
    });
  }

  // Scales are chosen for the recipe's bits; a recipe that keeps float weights (for
  // comparison and the exactness checks) gets the scales W4A4 would, so they are not trivial.
  const int w_bits = r.w_bits >= 16 ? 4 : r.w_bits, a_bits = r.w_bits >= 16 ? 4 : r.a_bits;
  const WeightQuantSpec spec{w_bits, r.group, r.w_sym, 0};
  const ActQuantParams act{a_bits, 0, 0, 1.0f, 1.0f};
  WeightQuantSpec o_spec = spec;
  o_spec.act_segment = h;
  const ActQuantParams o_act{a_bits, h, 0, 1.0f, 1.0f};
  // o_proj input column j belongs to value channel (KV head of its query head, j mod h).
  std::vector<int> value_slot(D);
  for (int j = 0; j < D; ++j) value_slot[j] = (j / h / group) * h + j % h;

  for (int i = 0; i < c.n_layers; ++i) {
    const auto t = Clock::now();
    FloatLayer& l = fm.layers[i];
    std::string note = stage + " layer " + std::to_string(i) + ":";
    auto choose = [&](LinearInput in, std::vector<const std::vector<float>*> ws, std::vector<int> outs,
                      const WeightQuantSpec& s, const ActQuantParams& a, std::vector<int> slot,
                      const char* name) {
      const ActivationRecorder::Rows& x = rec.rows(i, in);
      BdqProblem p;
      p.x = x.data.data();
      p.rows = x.n();
      p.cols = x.cols;
      for (const auto* w : ws) p.w.push_back(w->data());
      p.outs = std::move(outs);
      p.slot = std::move(slot);
      p.weights = s;
      p.act = a;
      BdqChoice ch = choose_bdq_scale(p);
      char part[96];
      std::snprintf(part, sizeof part, " %s %s %.3g->%.3g", name, ch.method.c_str(),
                    ch.error_identity, ch.error);
      note += part;
      return ch.s;
    };
    // Attention input: γ' = γ / s, q/k/v columns × s.
    if (all) {
      const std::vector<float> sa = choose(LinearInput::kAttention, {&l.wq, &l.wk, &l.wv},
                                           {D, KV, KV}, spec, act, {}, "qkv");
      for (int j = 0; j < D; ++j) l.attn_norm[j] /= sa[j];
      for (auto* w : {&l.wq, &l.wk, &l.wv}) scale_columns(*w, D, sa);
    }
    // o_proj input: v rows ÷ s (per value channel), o columns × s.
    const std::vector<float> so = choose(LinearInput::kAttentionOut, {&l.wo}, {D}, o_spec, o_act,
                                         value_slot, "o");
    std::vector<float> sv(KV);
    for (int j = 0; j < D; ++j) sv[value_slot[j]] = so[j];
    divide_rows(l.wv, D, sv);
    scale_columns(l.wo, D, so);
    // MLP input: γ' = γ / s, gate/up columns × s.
    if (all) {
      const std::vector<float> sm = choose(LinearInput::kMlp, {&l.w_gate, &l.w_up}, {I, I}, spec,
                                           act, {}, "gate/up");
      for (int j = 0; j < D; ++j) l.ffn_norm[j] /= sm[j];
      for (auto* w : {&l.w_gate, &l.w_up}) scale_columns(*w, D, sm);
    }
    // down_proj input: up rows ÷ s (exact through silu(g)·u), or online after R4.
    const std::vector<float> sd = choose(LinearInput::kMlpDown, {&l.w_down}, {D}, spec, act, {},
                                         "down");
    if (online_down) {
      l.down_scale.resize(I);
      for (int j = 0; j < I; ++j) l.down_scale[j] = 1.0f / sd[j];
    } else {
      divide_rows(l.w_up, D, sd);
    }
    scale_columns(l.w_down, I, sd);
    progress({stage, i + 1, c.n_layers, since(t), note});
  }
}

}  // namespace rotor
