#include "quant/layer_error.h"

#include <cblas.h>

#include <algorithm>
#include <limits>
#include <utility>

namespace rotor {

void fake_quantize_acts(const float* x, int rows, int cols, const ActQuantParams& p, float* out) {
  if (p.bits >= 16) {
    std::copy(x, x + static_cast<size_t>(rows) * cols, out);
    return;
  }
  QuantizedActs a;
  a.tokens = rows;
  a.segment = p.segment > 0 ? p.segment : (cols + kChunk - 1) / kChunk * kChunk;
  a.cols_padded = (cols + a.segment - 1) / a.segment * a.segment;
  a.block = a.segment;
  a.q.resize(static_cast<size_t>(rows) * a.cols_padded);
  a.scale.resize(static_cast<size_t>(rows) * (a.cols_padded / a.segment));
  a.zero.resize(a.scale.size());
  a.sums.resize(a.scale.size());
  quantize_acts_scalar(x, cols, rows, p, a);
  const int nseg = a.cols_padded / a.segment;
  for (int t = 0; t < rows; ++t)
    for (int j = 0; j < cols; ++j) {
      const size_t s = static_cast<size_t>(t) * nseg + j / a.segment;
      out[static_cast<size_t>(t) * cols + j] =
          a.scale[s] * static_cast<float>(a.q[static_cast<size_t>(t) * a.cols_padded + j] - a.zero[s]);
    }
}

std::vector<float> fake_quantize_weights(const float* w, int rows, int cols,
                                         const WeightQuantSpec& spec) {
  std::vector<float> out(static_cast<size_t>(rows) * cols);
  if (spec.bits >= 16) {
    std::copy(w, w + out.size(), out.begin());
    return out;
  }
  const QuantizedMatrix m = quantize_rtn(w, rows, cols, spec);
  dequantize_rows(m.view(), 0, rows, out.data());
  return out;
}

namespace {

// The clip factors searched: {1, 0.95, …, 0.55}.
constexpr int kClipSteps = 10;
float clip_factor(int i) { return 1.0f - 0.05f * i; }

// Sweeps of the per-segment refinement: the second rarely changes much, a third almost never.
constexpr int kSegmentSweeps = 2;

double squared_norm(const std::vector<float>& v) {
  double e = 0.0;
  for (float d : v) e += static_cast<double>(d) * d;
  return e;
}

// fq(x)·Wqᵀ − x·Wᵀ [rows, out].
std::vector<float> output_residual(const float* x, int rows, int cols, const float* w,
                                   const float* wq, int out, const ActQuantParams& act) {
  std::vector<float> xq(static_cast<size_t>(rows) * cols), y(static_cast<size_t>(rows) * out);
  fake_quantize_acts(x, rows, cols, act, xq.data());
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, cols, 1.0f, x, cols, w, cols,
              0.0f, y.data(), out);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, cols, 1.0f, xq.data(), cols, wq,
              cols, -1.0f, y.data(), out);
  return y;
}

// Σ layer_output_error over the linears reading x.
double total_output_error(const float* x, int rows, int cols, const std::vector<const float*>& w,
                          const std::vector<const float*>& wq, const std::vector<int>& outs,
                          const ActQuantParams& act) {
  double e = 0.0;
  for (size_t k = 0; k < w.size(); ++k)
    e += layer_output_error(x, rows, cols, w[k], wq[k], outs[k], act);
  return e;
}

}  // namespace

double layer_output_error(const float* x, int rows, int cols, const float* w, const float* wq,
                          int out, const ActQuantParams& act) {
  return squared_norm(output_residual(x, rows, cols, w, wq, out, act));
}

ActQuantParams choose_act_clip(const float* x, int rows, int cols,
                               const std::vector<const float*>& w,
                               const std::vector<const float*>& wq,
                               const std::vector<int>& outs, ActQuantParams act) {
  if (act.bits >= 16) return act;
  double best = std::numeric_limits<double>::infinity();
  ActQuantParams chosen = act;
  for (int i = 0; i < kClipSteps; ++i)
    for (int j = 0; j < kClipSteps; ++j) {
      act.clip_min = clip_factor(i);
      act.clip_max = clip_factor(j);
      const double e = total_output_error(x, rows, cols, w, wq, outs, act);
      if (e < best) {
        best = e;
        chosen = act;
      }
    }
  return chosen;
}

ActQuantParams choose_segment_clips(const float* x, int rows, int cols,
                                    const std::vector<const float*>& w,
                                    const std::vector<const float*>& wq,
                                    const std::vector<int>& outs, ActQuantParams act,
                                    int segments) {
  if (act.bits >= 16) return act;
  const int seg = act.segment;
  act.segment_clips.assign(segments, {act.clip_min, act.clip_max});
  double best = total_output_error(x, rows, cols, w, wq, outs, act);
  std::vector<std::vector<float>> residual(w.size());
  auto update_residuals = [&] {
    for (size_t k = 0; k < w.size(); ++k)
      residual[k] = output_residual(x, rows, cols, w[k], wq[k], outs[k], act);
  };
  update_residuals();
  // Changing segment s's clips changes only its columns of fq(x), by Δ_s, so a candidate's
  // output error is ‖R + Δ_s·Wq_sᵀ‖² from the current residuals R: a rows × seg × out product
  // instead of the whole layer's. A change is kept only if the full error confirms it, so the
  // result is never worse than the shared pair, whatever the shortcut's rounding.
  std::vector<float> product;
  bool improved = false;
  for (int sweep = 0; sweep < kSegmentSweeps; ++sweep) {
    bool changed = false;
    for (int s = 0; s * seg < cols; ++s) {  // later segments hold only padding
      const int begin = s * seg, width = std::min(seg, cols - begin);
      const size_t n = static_cast<size_t>(rows) * width;
      std::vector<float> xs(n), current(n), delta(n);
      for (size_t t = 0; t < static_cast<size_t>(rows); ++t)
        std::copy_n(x + t * cols + begin, width, &xs[t * width]);
      // The segment alone, quantized as the engine quantizes it within the row.
      auto fake_quantize = [&](ActQuantParams::Clip c, float* out) {
        fake_quantize_acts(xs.data(), rows, width, {act.bits, seg, 0, c.min, c.max}, out);
      };
      fake_quantize(act.segment_clips[s], current.data());
      double best_estimate = std::numeric_limits<double>::infinity();
      ActQuantParams::Clip pick = act.segment_clips[s];
      for (int i = 0; i < kClipSteps; ++i)
        for (int j = 0; j < kClipSteps; ++j) {
          const ActQuantParams::Clip c{clip_factor(i), clip_factor(j)};
          fake_quantize(c, delta.data());
          for (size_t m = 0; m < n; ++m) delta[m] -= current[m];
          double e = 0.0;
          for (size_t k = 0; k < w.size(); ++k) {
            product.resize(residual[k].size());
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, outs[k], width, 1.0f,
                        delta.data(), width, wq[k] + begin, cols, 0.0f, product.data(),
                        outs[k]);
            for (size_t m = 0; m < product.size(); ++m) {
              const double d = static_cast<double>(residual[k][m]) + product[m];
              e += d * d;
            }
          }
          if (e < best_estimate) {
            best_estimate = e;
            pick = c;
          }
        }
      const ActQuantParams::Clip was = act.segment_clips[s];
      if (pick.min == was.min && pick.max == was.max) continue;
      ActQuantParams trial = act;
      trial.segment_clips[s] = pick;
      const double e = total_output_error(x, rows, cols, w, wq, outs, trial);
      if (e < best) {
        best = e;
        act = std::move(trial);
        update_residuals();
        changed = true;
      }
    }
    if (!changed) break;
    improved = true;
  }
  if (!improved) act.segment_clips.clear();  // the shared pair says it all
  return act;
}

}  // namespace rotor
