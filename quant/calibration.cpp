#include "quant/calibration.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "engine/error.h"

namespace rotor {

std::vector<std::vector<int>> calibration_windows(const Tokenizer& tok, const std::string& text,
                                                  int windows, int ctx, uint64_t seed, int bos) {
  const std::vector<int> ids = tok.encode(text);
  const int chunk = ctx - 1;
  const int available = static_cast<int>(ids.size() / chunk);
  if (available == 0)
    throw Error("calibration text has " + std::to_string(ids.size()) +
                " tokens, fewer than one window of " + std::to_string(ctx));
  std::vector<int> order(available);
  std::iota(order.begin(), order.end(), 0);
  if (windows < available) {
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    order.resize(windows);
    std::sort(order.begin(), order.end());
  }
  std::vector<std::vector<int>> out;
  for (int w : order) {
    std::vector<int> win = {bos};
    win.insert(win.end(), ids.begin() + static_cast<size_t>(w) * chunk,
               ids.begin() + static_cast<size_t>(w + 1) * chunk);
    out.push_back(std::move(win));
  }
  return out;
}

HessianCollector::HessianCollector(const ModelConfig& c, const std::vector<LinearInput>& kinds)
    : h_(c.n_layers + 1) {
  const size_t D = c.dim, I = c.hidden_dim;
  for (LinearInput which : kinds) {
    const size_t n = which == LinearInput::kMlpDown ? I : D;
    if (which == LinearInput::kClassifier)
      h_[c.n_layers][static_cast<int>(which)].assign(n * n, 0.0);
    else
      for (int l = 0; l < c.n_layers; ++l) h_[l][static_cast<int>(which)].assign(n * n, 0.0);
  }
}

void HessianCollector::observe(int layer, LinearInput which, const float* x, int rows, int cols) {
  std::vector<double>& h = h_[layer][static_cast<int>(which)];
  if (h.empty()) return;  // not one of the kinds collected
  xd_.assign(x, x + static_cast<size_t>(rows) * cols);
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, cols, rows, 2.0, xd_.data(), cols, 1.0,
              h.data(), cols);
}

void HessianCollector::finish() {
  for (auto& per_layer : h_)
    for (auto& h : per_layer) {
      const size_t n = static_cast<size_t>(std::sqrt(static_cast<double>(h.size())));
      for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < i; ++j) h[i * n + j] = h[j * n + i];
    }
}

const std::vector<double>& HessianCollector::hessian(int layer, LinearInput which) const {
  return h_[layer][static_cast<int>(which)];
}

ActivationRecorder::ActivationRecorder(int n_layers, std::vector<LinearInput> kinds, int stride)
    : rows_(n_layers + 1), kinds_(std::move(kinds)), stride_(std::max(1, stride)) {}

void ActivationRecorder::observe(int layer, LinearInput which, const float* x, int rows,
                                 int cols) {
  if (std::find(kinds_.begin(), kinds_.end(), which) == kinds_.end()) return;
  Rows& r = rows_[layer][static_cast<int>(which)];
  r.cols = cols;
  // Rows of a window arrive in one prefill: sample positions stride-1, 2·stride-1, ...
  for (int t = stride_ - 1; t < rows; t += stride_) {
    r.data.insert(r.data.end(), x + static_cast<size_t>(t) * cols, x + static_cast<size_t>(t + 1) * cols);
    r.window_of.push_back(window_);
  }
}

const ActivationRecorder::Rows& ActivationRecorder::rows(int layer, LinearInput which) const {
  return rows_[layer][static_cast<int>(which)];
}

namespace {
// Shows one forward pass to several observers.
class ObserverFanOut final : public ActivationObserver {
 public:
  explicit ObserverFanOut(const std::vector<CalibrationObserver*>& o) : o_(o) {}
  void observe(int layer, LinearInput which, const float* x, int rows, int cols) override {
    for (CalibrationObserver* o : o_) o->observe(layer, which, x, rows, cols);
  }

 private:
  const std::vector<CalibrationObserver*>& o_;
};
}  // namespace

void run_calibration(const Model& model, const std::vector<std::vector<int>>& windows,
                     const std::vector<CalibrationObserver*>& observers,
                     const std::function<void(int, int)>& progress) {
  const int ctx = static_cast<int>(windows.front().size());
  Session session(model, ctx);
  ObserverFanOut fan(observers);
  session.set_observer(&fan);
  for (size_t w = 0; w < windows.size(); ++w) {
    for (CalibrationObserver* o : observers) o->start_window(static_cast<int>(w));
    session.reset();
    session.prefill(windows[w]);
    if (progress) progress(static_cast<int>(w + 1), static_cast<int>(windows.size()));
  }
  for (CalibrationObserver* o : observers) o->finish();
}

}  // namespace rotor
