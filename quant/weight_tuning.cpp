#include "quant/weight_tuning.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "engine/kernels/pack.h"

namespace rotor {

namespace {

// Adam's moment decay rates.
constexpr float kBeta1 = 0.9f, kBeta2 = 0.999f;

// One Adam step on x from gradient g (bias corrections c1, c2).
void adam_update(float g, float lr, float c1, float c2, float* x, float* m, float* v) {
  *m = kBeta1 * *m + (1 - kBeta1) * g;
  *v = kBeta2 * *v + (1 - kBeta2) * g * g;
  *x -= lr * (*m / c1) / (std::sqrt(*v / c2) + 1e-20f);
}

// What is learned for one linear, with Adam's moments: θ per (row, group), and per weight
// [rows, cols] the rounding offset from GPTQ's code (empty when the codes stay).
struct LinearState {
  int rows = 0, cols = 0, group = 0, groups = 0, cmin = 0, cmax = 0;
  std::vector<float> scale0, zero, theta, m, v;
  std::vector<int8_t> code0;
  std::vector<float> offset, om, ov;

  LinearState(const QuantizedMatrix& mat, bool rounding)
      : rows(mat.rows), cols(mat.cols), group(mat.group), groups(mat.groups()),
        cmin(-(1 << (mat.bits - 1))), cmax((1 << (mat.bits - 1)) - 1),
        scale0(mat.scales), zero(mat.zeros.begin(), mat.zeros.end()),
        theta(scale0.size(), 0.0f), m(theta), v(theta),
        code0(static_cast<size_t>(rows) * cols) {
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < cols; ++j) code0[index(r, j)] = static_cast<int8_t>(packed_code(packed_row(mat, r), mat.bits, j));
    if (rounding) offset = om = ov = std::vector<float>(code0.size(), 0.0f);
  }
  static const uint8_t* packed_row(const QuantizedMatrix& mat, int r) {
    return &mat.codes[r * packed_row_bytes(mat.cols_padded, mat.bits)];
  }
  size_t index(int r, int j) const { return static_cast<size_t>(r) * cols + j; }
  int code(size_t i) const {
    const int step = offset.empty() ? 0 : static_cast<int>(std::nearbyint(offset[i]));
    return std::clamp(code0[i] + step, cmin, cmax);
  }
  float scale(size_t p) const { return scale0[p] * std::exp(theta[p]); }

  // Steps θ and the offsets from dL/dW, then rewrites W = s·(code − zero).
  void step(const std::vector<float>& grad, float lr, float round_lr, float c1, float c2, std::vector<float>* w) {
    for (int r = 0; r < rows; ++r)
      for (int g = 0; g < groups; ++g) {
        const int j0 = g * group, j1 = std::min(cols, j0 + group);  // padding: none
        double d = 0.0;  // dL/dθ = Σ dL/dW · W over the group
        for (int j = j0; j < j1; ++j) d += static_cast<double>(grad[index(r, j)]) * (*w)[index(r, j)];
        const size_t p = static_cast<size_t>(r) * groups + g;
        adam_update(static_cast<float>(d), lr, c1, c2, &theta[p], &m[p], &v[p]);
        const float s = scale(p);
        for (int j = j0; j < j1; ++j) {
          const size_t i = index(r, j);
          if (!offset.empty()) {  // straight through the rounding: dL/dv = dL/dW · s
            adam_update(grad[i] * s, round_lr, c1, c2, &offset[i], &om[i], &ov[i]);
            offset[i] = std::clamp(offset[i], -1.0f, 1.0f);
          }
          (*w)[i] = s * (code(i) - zero[p]);
        }
      }
  }

  // Writes the learned scales and codes into mat; returns how many codes changed.
  size_t write(QuantizedMatrix* mat) const {
    for (size_t p = 0; p < theta.size(); ++p) mat->scales[p] = scale(p);
    if (offset.empty()) return 0;
    size_t changed = 0;
    std::vector<int8_t> codes(static_cast<size_t>(rows) * mat->cols_padded);
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < mat->cols_padded; ++j) {
        int c = packed_code(packed_row(*mat, r), mat->bits, j);  // padding keeps its code
        if (j < cols) {
          c = code(index(r, j));
          changed += c != code0[index(r, j)];
        }
        codes[static_cast<size_t>(r) * mat->cols_padded + j] = static_cast<int8_t>(c);
      }
    pack_weight_codes(codes.data(), rows, mat->cols_padded, mat->bits, mat->codes.data());
    weight_block_sums(codes.data(), rows, mat->cols_padded, mat->block, mat->sums.data());
    return changed;
  }
};

// Softmax of one row of logits into p, returning log Σ exp (for log p = logit − lse).
double softmax_row(const float* logits, int n, std::vector<double>* p) {
  const float max = *std::max_element(logits, logits + n);
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += (*p)[i] = std::exp(static_cast<double>(logits[i]) - max);
  for (int i = 0; i < n; ++i) (*p)[i] /= sum;
  return max + std::log(sum);
}

}  // namespace

WeightTuningReport tune_weights(const FloatModel& teacher, FloatModel* student,
                                const std::vector<TunedLinear>& linears,
                                const std::vector<std::vector<int>>& windows, const WeightTuningOptions& opt,
                                const std::function<void(int, int, double)>& progress) {
  WeightTuningReport report;
  if (opt.epochs <= 0 || windows.empty() || linears.empty()) return report;
  const int V = teacher.config.vocab_size;
  FloatBackprop t(teacher), s(*student);
  ModelGrads grads(*student);

  std::vector<LinearState> state;
  state.reserve(linears.size());
  for (const TunedLinear& lin : linears) state.emplace_back(*lin.matrix, opt.round_lr > 0);

  const int batch = std::max(1, opt.batch);
  const int steps_per_epoch = static_cast<int>((windows.size() + batch - 1) / batch);
  const int steps = opt.epochs * steps_per_epoch;
  std::vector<int> order(windows.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(opt.seed);
  std::vector<double> pt(V), ps(V);
  std::vector<float> dlogits;
  int step = 0;
  for (int epoch = 0; epoch < opt.epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    double kl_sum = 0.0;
    size_t tokens = 0;
    for (size_t b0 = 0; b0 < order.size(); b0 += batch) {
      const size_t b1 = std::min(order.size(), b0 + batch);
      grads.zero();
      size_t batch_tokens = 0;
      for (size_t b = b0; b < b1; ++b) batch_tokens += windows[order[b]].size();
      for (size_t b = b0; b < b1; ++b) {
        const std::vector<int>& w = windows[order[b]];
        const int T = static_cast<int>(w.size());
        const std::vector<float>& target = t.forward(w);
        const std::vector<float>& logits = s.forward(w);
        dlogits.resize(static_cast<size_t>(T) * V);
        for (int r = 0; r < T; ++r) {
          const size_t o = static_cast<size_t>(r) * V;
          const double lse_t = softmax_row(&target[o], V, &pt);
          const double lse_s = softmax_row(&logits[o], V, &ps);
          // KL(p_t‖p_s) = Σ p_t·(log p_t − log p_s); its gradient in the student's logits is p_s − p_t.
          for (int i = 0; i < V; ++i) {
            if (pt[i] > 0) kl_sum += pt[i] * ((target[o + i] - lse_t) - (logits[o + i] - lse_s));
            dlogits[o + i] = static_cast<float>((ps[i] - pt[i]) / batch_tokens);
          }
        }
        tokens += T;
        s.backward(dlogits, &grads);
      }
      const float round_lr = opt.round_lr * (1.0f - static_cast<float>(step) / steps);
      ++step;
      const float c1 = 1.0f - std::pow(kBeta1, static_cast<float>(step));
      const float c2 = 1.0f - std::pow(kBeta2, static_cast<float>(step));
      for (size_t k = 0; k < linears.size(); ++k)
        state[k].step(grads.layers[linears[k].layer].*linears[k].grad, opt.lr, round_lr, c1, c2, linears[k].weights);
      const double kl = kl_sum / static_cast<double>(tokens);
      if (epoch == 0) report.kl_first = kl;
      report.kl_last = kl;
      progress(step, steps, kl);
    }
  }

  for (size_t k = 0; k < linears.size(); ++k) {
    report.weights += linears[k].weights->size();
    report.codes_changed += state[k].write(linears[k].matrix);
  }
  return report;
}

}  // namespace rotor
