#include "quant/rotations.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "quant/hadamard_tables.h"

namespace rotor {

namespace {

// W[rows, cols] ← W · diag(s) (column scaling).
void scale_columns(std::vector<float>& w, int cols, const std::vector<float>& s) {
  const size_t rows = w.size() / cols;
  for (size_t r = 0; r < rows; ++r)
    for (int j = 0; j < cols; ++j) w[r * cols + j] *= s[j];
}

// W[rows, cols] ← W · R (columns change basis: the layer's input is now x·R).
void rotate_columns(std::vector<float>& w, int cols, const BlockRotation& r) {
  r.apply_rows(w.data(), static_cast<int>(w.size() / cols));
}

// W[rows, cols] ← Rᵀ · W (rows change basis: the layer's output is now y·R).
void rotate_rows(std::vector<float>& w, int rows, const BlockRotation& r) {
  const int cols = static_cast<int>(w.size() / rows);
  std::vector<float> t(w.size());
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) t[static_cast<size_t>(j) * rows + i] = w[static_cast<size_t>(i) * cols + j];
  r.apply_rows(t.data(), cols);  // (Rᵀ W)ᵀ = Wᵀ R
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) w[static_cast<size_t>(i) * cols + j] = t[static_cast<size_t>(j) * rows + i];
}

// The dense blocks of Aᵀ·B for two block rotations of the same shape, or empty when A == B.
std::vector<float> basis_change(const BlockRotation& a, const BlockRotation& b) {
  bool same = true;
  for (size_t k = 0; k < a.blocks.size() && same; ++k) same = a.blocks[k].q == b.blocks[k].q;
  if (same) return {};
  const int n = a.blocks[0].n;
  std::vector<float> out;
  for (size_t k = 0; k < a.blocks.size(); ++k) {
    std::vector<double> m(static_cast<size_t>(n) * n);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, n, 1.0, a.blocks[k].q.data(), n,
                b.blocks[k].q.data(), n, 0.0, m.data(), n);
    out.insert(out.end(), m.begin(), m.end());
  }
  return out;
}

bool same_shape(const BlockRotation& a, const BlockRotation& b) {
  return a.blocks.size() == b.blocks.size() && !a.blocks.empty() &&
         a.blocks[0].n == b.blocks[0].n;
}

}  // namespace

Orthogonal Orthogonal::identity(int n) {
  Orthogonal o{n, std::vector<double>(static_cast<size_t>(n) * n, 0.0)};
  for (int i = 0; i < n; ++i) o.q[static_cast<size_t>(i) * n + i] = 1.0;
  return o;
}

Orthogonal Orthogonal::hadamard(const HadamardSpec& spec) {
  const HadamardTransform h(spec.n, spec.h_m, spec.seed);
  Orthogonal o{spec.n, std::vector<double>(static_cast<size_t>(spec.n) * spec.n)};
  std::vector<float> row(spec.n);
  for (int i = 0; i < spec.n; ++i) {  // row i of Q is e_i · Q
    std::fill(row.begin(), row.end(), 0.0f);
    row[i] = 1.0f;
    h.apply(row.data());
    std::copy(row.begin(), row.end(), o.q.begin() + static_cast<size_t>(i) * spec.n);
  }
  return o;
}

double Orthogonal::orthogonality_error() const {
  std::vector<double> p(static_cast<size_t>(n) * n);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0, q.data(), n, q.data(), n, 0.0,
              p.data(), n);
  double e = 0.0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) e = std::max(e, std::abs(p[static_cast<size_t>(i) * n + j] - (i == j)));
  return e;
}

int BlockRotation::dim() const {
  int d = 0;
  for (const Orthogonal& b : blocks) d += b.n;
  return d;
}

void BlockRotation::apply_rows(float* x, int rows) const {
  const int dim = this->dim();
  std::vector<double> in, out;
  int offset = 0;
  for (const Orthogonal& b : blocks) {
    in.resize(static_cast<size_t>(rows) * b.n);
    out.resize(in.size());
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < b.n; ++j) in[static_cast<size_t>(r) * b.n + j] = x[static_cast<size_t>(r) * dim + offset + j];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, b.n, b.n, 1.0, in.data(), b.n,
                b.q.data(), b.n, 0.0, out.data(), b.n);
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < b.n; ++j)
        x[static_cast<size_t>(r) * dim + offset + j] = static_cast<float>(out[static_cast<size_t>(r) * b.n + j]);
    offset += b.n;
  }
}

void fold_norms(FloatModel& fm) {
  const int D = fm.config.dim;
  const std::vector<float> ones(D, 1.0f);
  for (FloatLayer& l : fm.layers) {
    for (auto* w : {&l.wq, &l.wk, &l.wv}) scale_columns(*w, D, l.attn_norm);
    for (auto* w : {&l.w_gate, &l.w_up}) scale_columns(*w, D, l.ffn_norm);
    l.attn_norm = ones;
    l.ffn_norm = ones;
  }
  scale_columns(fm.classifier, D, fm.final_norm);
  fm.final_norm = ones;
}

void rotate_residual(FloatModel& fm, const std::vector<BlockRotation>& attn,
                     const std::vector<BlockRotation>& mlp) {
  const ModelConfig& c = fm.config;
  const int D = c.dim, L = c.n_layers;
  if (static_cast<int>(attn.size()) != L || static_cast<int>(mlp.size()) != L)
    throw Error("rotate_residual: one rotation per layer is needed");
  for (int i = 0; i < L; ++i)
    if (attn[i].dim() != D || mlp[i].dim() != D || !same_shape(attn[i], mlp[i]) ||
        !same_shape(attn[i], attn[0]))
      throw Error("rotate_residual: rotations must be " + std::to_string(D) +
                  " wide with the same blocks");
  rotate_columns(fm.embedding, D, attn[0]);
  for (int i = 0; i < L; ++i) {
    FloatLayer& l = fm.layers[i];
    const BlockRotation& next = i + 1 < L ? attn[i + 1] : mlp[i];
    for (auto* w : {&l.wq, &l.wk, &l.wv}) rotate_columns(*w, D, attn[i]);
    rotate_rows(l.wo, D, mlp[i]);
    for (auto* w : {&l.w_gate, &l.w_up}) rotate_columns(*w, D, mlp[i]);
    rotate_rows(l.w_down, D, next);
    l.resid_attn = basis_change(attn[i], mlp[i]);
    l.resid_mlp = basis_change(mlp[i], next);
  }
  rotate_columns(fm.classifier, D, mlp[L - 1]);
  fm.resid_blocks = static_cast<int>(attn[0].blocks.size());
}

void rotate_values(FloatModel& fm, int layer, const std::vector<Orthogonal>& q2) {
  const ModelConfig& c = fm.config;
  const int D = c.dim, h = c.head_dim(), G = c.n_kv_heads, group = c.n_heads / G;
  if (static_cast<int>(q2.size()) != G) throw Error("rotate_values: one rotation per KV head");
  FloatLayer& l = fm.layers[layer];
  for (int g = 0; g < G; ++g) {
    const BlockRotation r{{q2[g]}};
    // v rows g·h .. (g+1)·h: the head's output v_g becomes v_g · Q2.
    std::vector<float> rows(l.wv.begin() + static_cast<size_t>(g) * h * D,
                            l.wv.begin() + static_cast<size_t>(g + 1) * h * D);
    rotate_rows(rows, h, r);
    std::copy(rows.begin(), rows.end(), l.wv.begin() + static_cast<size_t>(g) * h * D);
    // o columns of each query head in the group read v_g · Q2: W_o[:, head] ← W_o[:, head] · Q2.
    for (int qh = g * group; qh < (g + 1) * group; ++qh) {
      std::vector<float> cols(static_cast<size_t>(D) * h);
      for (int r2 = 0; r2 < D; ++r2)
        for (int j = 0; j < h; ++j) cols[static_cast<size_t>(r2) * h + j] = l.wo[static_cast<size_t>(r2) * D + qh * h + j];
      r.apply_rows(cols.data(), D);
      for (int r2 = 0; r2 < D; ++r2)
        for (int j = 0; j < h; ++j) l.wo[static_cast<size_t>(r2) * D + qh * h + j] = cols[static_cast<size_t>(r2) * h + j];
    }
  }
}

void check_rotatable(const ModelConfig& c, const std::string& had_dir) {
  for (int n : {c.dim, c.head_dim(), c.hidden_dim})
    load_hadamard_matrix(had_dir, HadamardTransform::factorize(n).m);
}

void add_online_hadamards(FloatModel& fm, uint64_t seed, const std::string& had_dir, bool qk) {
  const ModelConfig& c = fm.config;
  auto spec = [&](int n, uint64_t s) {
    HadamardSpec h;
    h.n = n;
    h.seed = s;
    h.h_m = load_hadamard_matrix(had_dir, HadamardTransform::factorize(n).m);
    return h;
  };
  if (qk) fm.qk_hadamard = spec(c.head_dim(), seed ^ 0x5233u);
  fm.down_hadamard = spec(c.hidden_dim, seed ^ 0x5234u);
  // The engine computes x·Q on the down_proj input; (x·Q)·(W·Q)ᵀ = x·Wᵀ.
  const HadamardTransform r4(fm.down_hadamard.n, fm.down_hadamard.h_m, fm.down_hadamard.seed);
  for (FloatLayer& l : fm.layers) r4.apply_rows(l.w_down.data(), c.dim, c.hidden_dim);
}

}  // namespace rotor
