#include "quant/bdq.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "quant/layer_error.h"

namespace rotor {

namespace {

// Per-slot statistics, then expanded back to columns.
struct Slots {
  std::vector<int> of;  // slot of each column
  int count = 0;
  explicit Slots(const BdqProblem& p) : of(p.slot) {
    if (of.empty()) {
      of.resize(p.cols);
      std::iota(of.begin(), of.end(), 0);
    }
    count = *std::max_element(of.begin(), of.end()) + 1;
  }
  std::vector<float> expand(const std::vector<double>& per_slot) const {
    std::vector<float> s(of.size());
    for (size_t j = 0; j < of.size(); ++j) s[j] = static_cast<float>(per_slot[of[j]]);
    return s;
  }
};

// Scales are only defined up to a common factor: keep their geometric mean at 1.
void normalize(std::vector<double>& s) {
  double log_sum = 0.0;
  for (double v : s) log_sum += std::log(v);
  const double g = std::exp(log_sum / s.size());
  for (double& v : s) v /= g;
}

// Keeps every value within a factor 1e4 of the largest, so no channel's scale degenerates.
void floor_values(std::vector<double>& v) {
  const double top = *std::max_element(v.begin(), v.end());
  for (double& x : v) x = std::max(x, top > 0 ? top * 1e-4 : 1.0);
}

double error_of(const BdqProblem& p, const std::vector<float>& s) {
  std::vector<float> xs(static_cast<size_t>(p.rows) * p.cols);
  for (int t = 0; t < p.rows; ++t)
    for (int j = 0; j < p.cols; ++j)
      xs[static_cast<size_t>(t) * p.cols + j] = p.x[static_cast<size_t>(t) * p.cols + j] / s[j];
  double e = 0.0;
  for (size_t k = 0; k < p.w.size(); ++k) {
    std::vector<float> ws(p.w[k], p.w[k] + static_cast<size_t>(p.outs[k]) * p.cols);
    for (int r = 0; r < p.outs[k]; ++r)
      for (int j = 0; j < p.cols; ++j) ws[static_cast<size_t>(r) * p.cols + j] *= s[j];
    const std::vector<float> wq = fake_quantize_weights(ws.data(), p.outs[k], p.cols, p.weights);
    e += layer_output_error(xs.data(), p.rows, p.cols, ws.data(), wq.data(), p.outs[k], p.act);
  }
  return e;
}

}  // namespace

BdqChoice choose_bdq_scale(const BdqProblem& p) {
  const Slots slots(p);
  const int n = slots.count;
  // max |x| and max |w| per slot, and the activation energy per slot (for balancing).
  std::vector<double> xmax(n, 0.0), wmax(n, 0.0), xenergy(n, 0.0), width(n, 0.0);
  for (int t = 0; t < p.rows; ++t)
    for (int j = 0; j < p.cols; ++j) {
      const double v = p.x[static_cast<size_t>(t) * p.cols + j];
      xmax[slots.of[j]] = std::max(xmax[slots.of[j]], std::abs(v));
      xenergy[slots.of[j]] += v * v;
    }
  for (int j = 0; j < p.cols; ++j) width[slots.of[j]] += 1.0;
  for (size_t k = 0; k < p.w.size(); ++k)
    for (int r = 0; r < p.outs[k]; ++r)
      for (int j = 0; j < p.cols; ++j)
        wmax[slots.of[j]] = std::max(wmax[slots.of[j]],
                                     std::abs(static_cast<double>(p.w[k][static_cast<size_t>(r) * p.cols + j])));
  floor_values(xmax);
  floor_values(wmax);
  floor_values(xenergy);

  BdqChoice best;
  best.s.assign(p.cols, 1.0f);
  best.method = "identity";
  best.error = best.error_identity = error_of(p, best.s);
  auto consider = [&](std::vector<double> per_slot, const std::string& method) {
    normalize(per_slot);
    std::vector<float> s = slots.expand(per_slot);
    const double e = error_of(p, s);
    if (e < best.error) {
      best.error = e;
      best.s = std::move(s);
      best.method = method;
    }
    return per_slot;
  };

  // SmoothQuant-style starts: s = max|x|^α / max|w|^(1−α).
  std::vector<double> start(n, 1.0);
  double start_error = best.error;
  for (double alpha : {0.2, 0.35, 0.5, 0.65, 0.8}) {
    std::vector<double> s(n);
    for (int i = 0; i < n; ++i) s[i] = std::pow(xmax[i], alpha) / std::pow(wmax[i], 1.0 - alpha);
    char name[32];
    std::snprintf(name, sizeof name, "smooth a=%.2f", alpha);
    const double before = best.error;
    s = consider(std::move(s), name);
    if (best.error < before && best.error < start_error) {
      start = s;
      start_error = best.error;
    }
  }
  // Balancing from the best start: alternately normalize the rows of (W·diag(s))² and move
  // each column's weight energy toward its activation energy E[(x/s)²] (a Sinkhorn-style
  // fixed point where the product of the two energy maps is flat across columns).
  std::vector<double> s = start;
  for (int it = 0; it < 8; ++it) {
    std::vector<double> wenergy(n, 0.0);
    for (size_t k = 0; k < p.w.size(); ++k)
      for (int r = 0; r < p.outs[k]; ++r) {
        const float* row = p.w[k] + static_cast<size_t>(r) * p.cols;
        double rms = 0.0;
        for (int j = 0; j < p.cols; ++j) rms += std::pow(row[j] * s[slots.of[j]], 2);
        rms = std::sqrt(rms / p.cols) + 1e-30;
        for (int j = 0; j < p.cols; ++j) wenergy[slots.of[j]] += std::pow(row[j] * s[slots.of[j]] / rms, 2);
      }
    floor_values(wenergy);
    for (int i = 0; i < n; ++i) {
      const double a = xenergy[i] / (s[i] * s[i]), c = wenergy[i];
      s[i] *= std::pow(a / c, 0.25);
    }
    normalize(s);
  }
  consider(std::move(s), "balanced");
  return best;
}

}  // namespace rotor
