#include "quant/rotate_model.h"

#include <cblas.h>

#include <chrono>
#include <cstdio>

#include "engine/error.h"
#include "quant/calibration.h"
#include "quant/hadamard_tables.h"
#include "quant/psot.h"
#include "quant/rotations.h"

namespace rotor {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Windows [tokens, channels] of recorded rows (ordered by window).
std::vector<std::vector<float>> by_window(const std::vector<float>& rows,
                                          const std::vector<int>& window_of, int cols) {
  std::vector<std::vector<float>> w;
  for (size_t t = 0; t < window_of.size(); ++t) {
    if (window_of[t] >= static_cast<int>(w.size())) w.resize(window_of[t] + 1);
    w[window_of[t]].insert(w[window_of[t]].end(), rows.begin() + t * cols,
                           rows.begin() + (t + 1) * cols);
  }
  return w;
}

// Outlier-token weights per row (METHODS.md §3); layers 0 and 1 weigh every token equally.
std::vector<float> token_weights(int layer, const std::vector<float>& rows,
                                 const std::vector<int>& window_of, int cols) {
  std::vector<float> w(window_of.size(), 1.0f);
  if (layer < 2) return w;
  const OutlierSelection sel = select_outlier_tokens(by_window(rows, window_of, cols), cols);
  std::vector<size_t> seen(sel.weights.size(), 0);
  for (size_t t = 0; t < window_of.size(); ++t)
    w[t] = sel.weights[window_of[t]][seen[window_of[t]]++];
  return w;
}

// Columns [c0, c0 + width) of rows [n, cols] as one PSOT tensor.
PsotTensor slice(const std::vector<float>& rows, int cols, int c0, int width,
                 const std::vector<float>& weights, const std::vector<int>& window_of) {
  PsotTensor t;
  t.width = width;
  const size_t n = window_of.size();
  t.rows.resize(n * width);
  for (size_t r = 0; r < n; ++r)
    std::copy(rows.begin() + r * cols + c0, rows.begin() + r * cols + c0 + width,
              t.rows.begin() + r * width);
  t.weights = weights;
  t.window_of = window_of;
  return t;
}

// The residual-stream tensor of one recorded input: weighted by its outlier tokens.
PsotTensor residual_tensor(int layer, const ActivationRecorder::Rows& x, int c0, int width) {
  return slice(x.data, x.cols, c0, width, token_weights(layer, x.data, x.window_of, x.cols),
               x.window_of);
}

class RotationLearner {
 public:
  RotationLearner(const FloatModel& fm, const Recipe& r, const std::string& had_dir,
                  const std::function<void(const QuantizeProgress&)>& progress)
      : fm_(fm), r_(r), had_dir_(had_dir), progress_(progress) {
    options_.seed = r.seed;
  }

  HadamardSpec spec(int n, uint64_t salt) const {
    HadamardSpec s;
    s.n = n;
    s.seed = (r_.seed + 1) * 0x9E3779B97F4A7C15ull ^ salt;
    s.h_m = load_hadamard_matrix(had_dir_, HadamardTransform::factorize(n).m);
    return s;
  }

  BlockRotation hadamard_blocks(int blocks, uint64_t salt) const {
    BlockRotation br;
    for (int k = 0; k < blocks; ++k)
      br.blocks.push_back(Orthogonal::hadamard(spec(fm_.config.dim / blocks, salt + k)));
    return br;
  }

  // How many matrices will be learned (for the progress bar).
  void expect(int total) { total_ = total; }

  // Learns each block of `init` on its columns of the given inputs.
  BlockRotation learn_residual(const std::vector<std::pair<int, const ActivationRecorder::Rows*>>& inputs,
                               BlockRotation init, const std::string& what) {
    int c0 = 0;
    for (size_t k = 0; k < init.blocks.size(); ++k) {
      std::vector<PsotTensor> tensors;
      for (const auto& [layer, rows] : inputs)
        tensors.push_back(residual_tensor(layer, *rows, c0, init.blocks[k].n));
      std::string name = what;
      if (init.blocks.size() > 1) name += " block " + std::to_string(k);
      init.blocks[k] = learn(tensors, std::move(init.blocks[k]), -1, name);
      c0 += init.blocks[k].n;
    }
    return init;
  }

  // Q2 of KV head g of `layer`: the o_proj input of the group's query heads, plus the values
  // (rescaled to the same magnitude).
  Orthogonal learn_values(int layer, int g, const ActivationRecorder::Rows& attn_in,
                          const ActivationRecorder::Rows& attn_out, Orthogonal init) {
    const ModelConfig& c = fm_.config;
    const int h = c.head_dim(), group = c.n_heads / c.n_kv_heads, D = c.dim;
    const int n = attn_in.n();
    // Values of this head: x · Wv_gᵀ.
    std::vector<float> v(static_cast<size_t>(n) * h);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, h, D, 1.0f, attn_in.data.data(), D,
                fm_.layers[layer].wv.data() + static_cast<size_t>(g) * h * D, D, 0.0f, v.data(), h);
    PsotTensor vt = slice(v, h, 0, h, token_weights(layer, v, attn_in.window_of, h),
                          attn_in.window_of);
    // The group's o_proj input: one row per (token, query head).
    const std::vector<float> ow = token_weights(layer, attn_out.data, attn_out.window_of, D);
    PsotTensor ot;
    ot.width = h;
    for (int t = 0; t < n; ++t)
      for (int q = g * group; q < (g + 1) * group; ++q) {
        const float* src = &attn_out.data[static_cast<size_t>(t) * D + q * h];
        ot.rows.insert(ot.rows.end(), src, src + h);
        ot.weights.push_back(ow[t]);
        ot.window_of.push_back(attn_out.window_of[t]);
      }
    return learn({ot, vt}, std::move(init), 1,
                 "layer " + std::to_string(layer) + " Q2 head " + std::to_string(g));
  }

 private:
  Orthogonal learn(const std::vector<PsotTensor>& tensors, Orthogonal init, int v_term,
                   const std::string& what) {
    const auto t = Clock::now();
    Orthogonal q = learn_rotation(tensors, std::move(init), options_, v_term,
                                  [&](double before, double after) {
      char line[160];
      std::snprintf(line, sizeof line, "psot %s: objective %.4g -> %.4g (%+.1f%%)", what.c_str(),
                    before, after, before > 0 ? 100.0 * (after - before) / before : 0.0);
      note_ = line;
    });
    progress_({"psot", ++done_, total_, since(t), note_});
    return q;
  }

  const FloatModel& fm_;
  const Recipe& r_;
  std::string had_dir_;
  const std::function<void(const QuantizeProgress&)>& progress_;
  PsotOptions options_;
  int done_ = 0, total_ = 0;
  std::string note_;
};

}  // namespace

int psot_blocks(int dim) { return dim >= 4096 ? 2 : 1; }

void rotate_model(FloatModel& fm, const Recipe& r, const std::vector<std::vector<int>>& windows,
                  const std::string& hadamard_dir,
                  const std::function<void(const QuantizeProgress&)>& progress) {
  const ModelConfig& c = fm.config;
  const int L = c.n_layers, G = c.n_kv_heads, h = c.head_dim();
  const bool psot = r.rotation == "psot", per_layer = r.rotation == "psot-layer";
  if (!psot && !per_layer && r.rotation != "hadamard")
    throw Error("unknown rotation '" + r.rotation + "' (none, hadamard, psot, psot-layer)");
  // R3/R4 first: they touch only down_proj's input side (commuting with everything below),
  // and a missing or unusable Hadamard factor then fails before any long work. R3 exists to
  // spread K's outlier channels before per-token quantization; a K cache quantized per channel
  // (kv_k_group > 0) gives each channel its own range, and mixing channels only hurts it
  // (measured: docs/QUALITY.md), so R3 goes with the per-token layout only.
  add_online_hadamards(fm, r.seed, hadamard_dir, r.kv_k_group == 0);
  RotationLearner learner(fm, r, hadamard_dir, progress);

  // Everything starts from randomized Hadamards: "hadamard" stops there.
  const int blocks = r.rotation == "hadamard" ? 1 : psot_blocks(c.dim);
  std::vector<BlockRotation> attn(L, learner.hadamard_blocks(blocks, 0x100));
  std::vector<BlockRotation> mlp = attn;
  std::vector<std::vector<Orthogonal>> q2(L, std::vector<Orthogonal>(G, Orthogonal::hadamard(learner.spec(h, 0x200))));

  if (psot || per_layer) {
    // PSOT learns on the full-precision inputs of the norm-folded model: its rotations act on
    // RMSNorm(x) directly, and the V / o_proj inputs do not depend on the residual basis.
    const std::unique_ptr<Model> model = to_model(fm);
    ActivationRecorder rec(L, {LinearInput::kAttention, LinearInput::kAttentionOut, LinearInput::kMlp}, 1);
    auto t = Clock::now();
    run_calibration(*model, windows, {&rec}, [&](int done, int total) {
      progress({"psot calibrate", done, total, since(t), ""});
      t = Clock::now();
    });
    learner.expect((psot ? blocks : 2 * L * blocks) + L * G);
    if (psot) {
      std::vector<std::pair<int, const ActivationRecorder::Rows*>> all;
      for (int i = 0; i < L; ++i) {
        all.push_back({i, &rec.rows(i, LinearInput::kAttention)});
        all.push_back({i, &rec.rows(i, LinearInput::kMlp)});
      }
      const BlockRotation q1 = learner.learn_residual(all, attn[0], "global Q1");
      attn.assign(L, q1);
      mlp.assign(L, q1);
    } else {
      for (int i = 0; i < L; ++i) {
        attn[i] = learner.learn_residual({{i, &rec.rows(i, LinearInput::kAttention)}}, attn[i],
                                         "layer " + std::to_string(i) + " Q1");
        mlp[i] = learner.learn_residual({{i, &rec.rows(i, LinearInput::kMlp)}}, mlp[i],
                                        "layer " + std::to_string(i) + " Q4");
      }
    }
    for (int i = 0; i < L; ++i)
      for (int g = 0; g < G; ++g)
        q2[i][g] = learner.learn_values(i, g, rec.rows(i, LinearInput::kAttention),
                                        rec.rows(i, LinearInput::kAttentionOut), q2[i][g]);
  }
  rotate_residual(fm, attn, mlp);
  for (int i = 0; i < L; ++i) rotate_values(fm, i, q2[i]);
}

}  // namespace rotor
