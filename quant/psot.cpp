#include "quant/psot.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include "engine/error.h"

namespace rotor {

double psot_cost(const PsotTensor& x, int begin, int end, const Orthogonal& q, double temperature,
                 std::vector<double>* grad) {
  const int n = x.width, m = end - begin;
  if (m <= 0) return 0.0;
  std::vector<double> a(static_cast<size_t>(m) * n), y(a.size());
  for (size_t i = 0; i < a.size(); ++i) a[i] = x.rows[static_cast<size_t>(begin) * n + i];
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, n, 1.0, a.data(), n, q.q.data(), n,
              0.0, y.data(), n);
  // Per row: u = y − mean(y), s = softmax(|u|/T), f = s·|u|; y is reused for u.
  std::vector<double> s(y.size());
  double total = 0.0;
  for (int t = 0; t < m; ++t) {
    double* u = &y[static_cast<size_t>(t) * n];
    double* st = &s[static_cast<size_t>(t) * n];
    const double mean = std::accumulate(u, u + n, 0.0) / n;
    double peak = 0.0;
    for (int j = 0; j < n; ++j) {
      u[j] -= mean;
      peak = std::max(peak, std::abs(u[j]));
    }
    double z = 0.0;
    for (int j = 0; j < n; ++j) z += st[j] = std::exp((std::abs(u[j]) - peak) / temperature);
    const double w2 = static_cast<double>(x.weights[begin + t]) * x.weights[begin + t];
    for (int j = 0; j < n; ++j) {
      st[j] /= z;
      const double f = st[j] * std::abs(u[j]);
      total += w2 * f * f;
    }
  }
  const double cost = std::sqrt(total);
  if (!grad || cost == 0.0) return cost;
  // Backward: dL/df = w²·f/L; through the softmax; through |u|; through the centring.
  for (int t = 0; t < m; ++t) {
    double* u = &y[static_cast<size_t>(t) * n];
    const double* st = &s[static_cast<size_t>(t) * n];
    const double w2 = static_cast<double>(x.weights[begin + t]) * x.weights[begin + t];
    double gf_dot_f = 0.0;
    for (int j = 0; j < n; ++j) {
      const double f = st[j] * std::abs(u[j]);
      gf_dot_f += (w2 * f / cost) * f;
    }
    double mean_g = 0.0;
    for (int j = 0; j < n; ++j) {
      const double aj = std::abs(u[j]);
      const double gf = w2 * st[j] * aj / cost;
      const double ga = gf * st[j] + st[j] / temperature * (gf * aj - gf_dot_f);
      u[j] = u[j] >= 0 ? ga : -ga;  // u now holds dL/du
      mean_g += u[j];
    }
    mean_g /= n;
    for (int j = 0; j < n; ++j) u[j] -= mean_g;  // dL/dy
  }
  if (grad->empty()) grad->assign(static_cast<size_t>(n) * n, 0.0);
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, m, 1.0, a.data(), n, y.data(), n, 1.0,
              grad->data(), n);
  return cost;
}

OutlierSelection select_outlier_tokens(const std::vector<std::vector<float>>& windows,
                                       int channels, int probe, float weight) {
  OutlierSelection sel;
  if (windows.empty()) return sel;
  struct Stats {
    double mean, std;
  };
  std::vector<Stats> stats;
  for (const auto& w : windows) {
    double sum = 0.0, sq = 0.0;
    for (float v : w) sum += v;
    const double mean = sum / w.size();
    for (float v : w) sq += (v - mean) * (v - mean);
    stats.push_back({mean, std::sqrt(sq / w.size())});
  }
  // The largest |x − mean| / std of each token: flagged at k iff that exceeds k.
  auto peaks = [&](size_t w) {
    const int tokens = static_cast<int>(windows[w].size() / channels);
    std::vector<double> p(tokens, 0.0);
    for (int t = 0; t < tokens; ++t)
      for (int j = 0; j < channels; ++j)
        p[t] = std::max(p[t], std::abs(windows[w][static_cast<size_t>(t) * channels + j] -
                                       stats[w].mean) / std::max(stats[w].std, 1e-30));
    return p;
  };
  const size_t n_probe = std::min<size_t>(probe, windows.size());
  std::vector<std::vector<double>> probe_peaks;
  for (size_t w = 0; w < n_probe; ++w) probe_peaks.push_back(peaks(w));
  const int tokens = static_cast<int>(windows[0].size() / channels);

  double prev_ratio = 0.0;
  int last_nonempty = 0;
  for (int k = 0; k < 1000; ++k) {
    std::set<int> uni;
    double flagged = 0.0;
    for (const auto& p : probe_peaks)
      for (int t = 0; t < static_cast<int>(p.size()); ++t)
        if (p[t] > k) {
          uni.insert(t);
          flagged += 1.0;
        }
    if (uni.empty()) break;
    last_nonempty = k;
    const double avg = flagged / n_probe, u = static_cast<double>(uni.size());
    const double ratio = (u - avg) / u;
    if (k >= 1 && std::abs(ratio - prev_ratio) < 0.02 && u < 0.4 * tokens) {
      sel.k = k;
      break;
    }
    prev_ratio = ratio;
    sel.k = -1;
  }
  if (sel.k < 0) sel.k = last_nonempty;
  for (size_t w = 0; w < windows.size(); ++w) {
    const std::vector<double> p = peaks(w);
    std::vector<float> wt(p.size(), 1.0f);
    if (sel.k > 0)
      for (size_t t = 0; t < p.size(); ++t)
        if (p[t] > sel.k) wt[t] = weight;
    sel.weights.push_back(std::move(wt));
  }
  return sel;
}

namespace {

// Row ranges of each window in a tensor whose rows are ordered by window.
std::vector<std::pair<int, int>> window_ranges(const PsotTensor& x, int n_windows) {
  std::vector<std::pair<int, int>> r(n_windows, {0, 0});
  const int rows = x.n_rows();
  int t = 0;
  for (int w = 0; w < n_windows; ++w) {
    r[w].first = t;
    while (t < rows && x.window_of[t] == w) ++t;
    r[w].second = t;
  }
  if (t != rows) throw Error("PSOT: tensor rows are not ordered by calibration window");
  return r;
}

// Q ← polar factor of Q (Newton–Schulz), undoing the drift of many approximate Cayley steps.
void reorthonormalize(Orthogonal& q, int iterations) {
  const int n = q.n;
  std::vector<double> qtq(static_cast<size_t>(n) * n), next(qtq.size());
  for (int it = 0; it < iterations; ++it) {
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, n, 1.0, q.q.data(), n, q.q.data(),
                n, 0.0, qtq.data(), n);
    for (size_t i = 0; i < qtq.size(); ++i) qtq[i] *= -0.5;
    for (int i = 0; i < n; ++i) qtq[static_cast<size_t>(i) * n + i] += 1.5;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, q.q.data(), n,
                qtq.data(), n, 0.0, next.data(), n);
    q.q.swap(next);
  }
}

// One Cayley step: A = G·Qᵀ − Q·Gᵀ, α = min(lr, 1/(‖A‖₁ + 1e-8)),
// Q ← (I + α/2·A)⁻¹(I − α/2·A)·Q by fixed-point iteration Y = Q − α/2·A·(Q + Y).
void cayley_step(Orthogonal& q, const std::vector<double>& g, double lr) {
  const int n = q.n;
  std::vector<double> a(static_cast<size_t>(n) * n);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0, g.data(), n, q.q.data(), n,
              0.0, a.data(), n);
  for (int i = 0; i < n; ++i)  // A = M − Mᵀ with M = G·Qᵀ
    for (int j = 0; j < i; ++j) {
      const double d = a[static_cast<size_t>(i) * n + j] - a[static_cast<size_t>(j) * n + i];
      a[static_cast<size_t>(i) * n + j] = d;
      a[static_cast<size_t>(j) * n + i] = -d;
    }
  for (int i = 0; i < n; ++i) a[static_cast<size_t>(i) * n + i] = 0.0;
  double norm1 = 0.0;
  for (int j = 0; j < n; ++j) {
    double col = 0.0;
    for (int i = 0; i < n; ++i) col += std::abs(a[static_cast<size_t>(i) * n + j]);
    norm1 = std::max(norm1, col);
  }
  const double alpha = std::min(lr, 1.0 / (norm1 + 1e-8));
  std::vector<double> y = q.q, sum(y.size());
  for (int it = 0; it < 6; ++it) {
    for (size_t i = 0; i < sum.size(); ++i) sum[i] = q.q[i] + y[i];
    y = q.q;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, -0.5 * alpha, a.data(), n,
                sum.data(), n, 1.0, y.data(), n);
  }
  q.q.swap(y);
}

}  // namespace

Orthogonal learn_rotation(const std::vector<PsotTensor>& tensors, Orthogonal q,
                          const PsotOptions& o, int v_ratio_term,
                          const std::function<void(double, double)>& log) {
  if (tensors.empty()) return q;
  int n_windows = 0;
  for (const PsotTensor& t : tensors) {
    if (t.width != q.n) throw Error("PSOT: tensor width does not match the rotation");
    if (t.n_rows()) n_windows = std::max(n_windows, t.window_of.back() + 1);
  }
  std::vector<std::vector<std::pair<int, int>>> ranges;
  for (const PsotTensor& t : tensors) ranges.push_back(window_ranges(t, n_windows));
  std::vector<double> scales;
  for (const PsotTensor& t : tensors) scales.push_back(t.scale);

  // The objective of one window, with the V-term ratio refreshed (detached); adds its
  // gradient into *grad when given. The full objective is the sum over windows.
  std::vector<double> g;
  auto window_cost = [&](const Orthogonal& cur, int w, std::vector<double>* grad) {
    std::vector<double> costs(tensors.size());
    std::vector<std::vector<double>> grads(tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i)
      costs[i] = psot_cost(tensors[i], ranges[i][w].first, ranges[i][w].second, cur,
                           o.temperature, grad ? &grads[i] : nullptr);
    if (v_ratio_term >= 0) {
      double others = 0.0;
      for (size_t i = 0; i < tensors.size(); ++i)
        if (static_cast<int>(i) != v_ratio_term) others += scales[i] * costs[i];
      scales[v_ratio_term] = costs[v_ratio_term] > 0 ? others / costs[v_ratio_term] : 0.0;
    }
    double total = 0.0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      total += scales[i] * costs[i];
      if (grad && !grads[i].empty())
        for (size_t k = 0; k < grad->size(); ++k) (*grad)[k] += scales[i] * grads[i][k];
    }
    return total;
  };
  auto objective = [&](const Orthogonal& cur) {
    double total = 0.0;
    for (int w = 0; w < n_windows; ++w) total += window_cost(cur, w, nullptr);
    return total;
  };

  const double before = objective(q);
  Orthogonal best = q;
  double best_cost = before;
  std::vector<int> order(n_windows);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(o.seed);
  const int batches = (n_windows + o.batch_windows - 1) / o.batch_windows;
  const int total_steps = std::max(1, o.epochs * batches);
  int step = 0;
  for (int e = 0; e < o.epochs; ++e) {
    std::shuffle(order.begin(), order.end(), rng);
    for (int b = 0; b < batches; ++b) {
      g.assign(static_cast<size_t>(q.n) * q.n, 0.0);
      for (int k = b * o.batch_windows; k < std::min(n_windows, (b + 1) * o.batch_windows); ++k)
        window_cost(q, order[k], &g);
      const double lr = o.lr * (1.0 - 0.99 * step / total_steps);
      cayley_step(q, g, lr);
      ++step;
    }
    reorthonormalize(q, 2);
    const double c = objective(q);
    if (c < best_cost) {
      best_cost = c;
      best = q;
    }
  }
  reorthonormalize(best, 3);
  if (log) log(before, objective(best));
  return best;
}

}  // namespace rotor
