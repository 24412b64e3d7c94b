// PSOT (METHODS.md §3): orthogonal matrices learned so that each token's centred peaks fall
// while its energy, kept by orthogonality, spreads over the channels: activations that quantize
// well. Cost, optimizer (Cayley SGD on the orthogonal group) and outlier-token weighting.
#pragma once
#include <functional>
#include <vector>

#include "quant/rotations.h"

namespace rotor {

// One activation tensor the rotation acts on: rows of `width` floats (tokens, or (token, head)
// pairs for Q2), grouped into calibration windows, with one weight per row.
struct PsotTensor {
  int width = 0;
  std::vector<float> rows;      // [n_rows, width]
  std::vector<float> weights;   // [n_rows]: 30 for outlier tokens, 1 otherwise
  std::vector<int> window_of;   // [n_rows]: the calibration window each row came from
  double scale = 1.0;           // the term's weight in a sum of tensors (Q2's V-term ratio)
  int n_rows() const { return width ? static_cast<int>(rows.size() / width) : 0; }
};

// L = sqrt(Σ_t Σ_j (w_t·s_tj·|u_tj|)²) over rows [begin, end) of x·Q, u = centred rows,
// s = softmax(|u|/T) per row. With grad, adds dL/dQ (n×n, row-major) into *grad.
double psot_cost(const PsotTensor& x, int begin, int end, const Orthogonal& q, double temperature,
                 std::vector<double>* grad);

// Per-row weights of one tensor by METHODS.md §3's outlier-token selection: windows[w] is
// [tokens, channels] of calibration window w; the first `probe` windows choose k; then rows
// beyond mean ± k·std (over their window) get `weight`. Returns [windows][tokens] weights and
// the chosen k (0 when no k qualifies: every token weighs 1).
struct OutlierSelection {
  int k = 0;
  std::vector<std::vector<float>> weights;
};
OutlierSelection select_outlier_tokens(const std::vector<std::vector<float>>& windows,
                                       int channels, int probe = 10, float weight = 30.0f);

struct PsotOptions {
  double lr = 2.0;          // decays linearly to 1% over the epochs
  int epochs = 15;
  int batch_windows = 4;
  double temperature = 2.0;
  uint64_t seed = 0;        // the order of the batches
};

// Learns Q (starting from `init`) minimizing Σ_tensors scale·L on windows of the tensors, by
// Cayley SGD. Reports the full-data objective before and after via log(before, after).
// For Q2, `v_ratio_term` (if ≥ 0) is the index of a tensor whose scale is reset every step to
// L_others / L_it (a detached ratio), so both terms count equally.
Orthogonal learn_rotation(const std::vector<PsotTensor>& tensors, Orthogonal init,
                          const PsotOptions& options, int v_ratio_term,
                          const std::function<void(double, double)>& log);

}  // namespace rotor
