#include "quant/scale_tuning.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace rotor {

namespace {

// θ of one linear, one per (row, group) of its matrix, with Adam's moments, and the student's
// weights at θ = 0.
struct ScaleState {
  std::vector<float> theta, m, v, weights0;
};

// Softmax of one row of logits into p, returning log Σ exp (for log p = logit − lse).
double softmax_row(const float* logits, int n, std::vector<double>* p) {
  const float max = *std::max_element(logits, logits + n);
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += (*p)[i] = std::exp(static_cast<double>(logits[i]) - max);
  for (int i = 0; i < n; ++i) (*p)[i] /= sum;
  return max + std::log(sum);
}

// One Adam step on θ (bias corrections c1, c2) from dL/dW, then W = W₀·e^θ per (row, group).
void adam_step(const TunedLinear& lin, const std::vector<float>& grad, ScaleState& st, float lr,
               float c1, float c2) {
  const float beta1 = 0.9f, beta2 = 0.999f;
  const QuantizedMatrix& mat = *lin.matrix;
  std::vector<float>& w = *lin.weights;
  const int cols = mat.cols, groups = mat.groups();
  for (int r = 0; r < mat.rows; ++r)
    for (int g = 0; g < groups; ++g) {
      const size_t base = static_cast<size_t>(r) * cols;
      const int j0 = g * mat.group, j1 = std::min(cols, j0 + mat.group);  // padding: none
      double d = 0.0;  // dL/dθ = Σ dL/dW · W over the group
      for (int j = j0; j < j1; ++j) d += static_cast<double>(grad[base + j]) * w[base + j];
      const size_t p = static_cast<size_t>(r) * groups + g;
      st.m[p] = beta1 * st.m[p] + (1 - beta1) * static_cast<float>(d);
      st.v[p] = beta2 * st.v[p] + (1 - beta2) * static_cast<float>(d * d);
      st.theta[p] -= lr * (st.m[p] / c1) / (std::sqrt(st.v[p] / c2) + 1e-12f);
      const float f = std::exp(st.theta[p]);
      for (int j = j0; j < j1; ++j) w[base + j] = st.weights0[base + j] * f;
    }
}

}  // namespace

ScaleTuningReport tune_scales(const FloatModel& teacher, FloatModel* student,
                              const std::vector<TunedLinear>& linears,
                              const std::vector<std::vector<int>>& windows, const ScaleTuningOptions& opt,
                              const std::function<void(int, int, double)>& progress) {
  ScaleTuningReport report;
  if (opt.epochs <= 0 || windows.empty() || linears.empty()) return report;
  const int V = teacher.config.vocab_size;
  FloatBackprop t(teacher), s(*student);
  ModelGrads grads(*student);

  std::vector<ScaleState> state(linears.size());
  for (size_t k = 0; k < linears.size(); ++k) {
    state[k].theta.assign(linears[k].matrix->scales.size(), 0.0f);
    state[k].m = state[k].v = state[k].theta;
    state[k].weights0 = *linears[k].weights;
  }

  const int batch = std::max(1, opt.batch);
  const int steps_per_epoch = static_cast<int>((windows.size() + batch - 1) / batch);
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
        const std::vector<float> target = t.forward(w);
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
      ++step;
      const float c1 = 1.0f - std::pow(0.9f, static_cast<float>(step));
      const float c2 = 1.0f - std::pow(0.999f, static_cast<float>(step));
      for (size_t k = 0; k < linears.size(); ++k)
        adam_step(linears[k], grads.layers[linears[k].layer].*linears[k].grad, state[k], opt.lr, c1, c2);
      const double kl = kl_sum / static_cast<double>(tokens);
      if (epoch == 0) report.kl_first = kl;
      report.kl_last = kl;
      progress(step, opt.epochs * steps_per_epoch, kl);
    }
  }

  for (size_t k = 0; k < linears.size(); ++k)
    for (size_t i = 0; i < state[k].theta.size(); ++i)
      linears[k].matrix->scales[i] *= std::exp(state[k].theta[i]);
  return report;
}

}  // namespace rotor
