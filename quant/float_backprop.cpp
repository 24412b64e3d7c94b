#include "quant/float_backprop.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/error.h"

namespace rotor {

namespace {

// y[rows, out] = x[rows, in] · Wᵀ.
void linear(const float* x, const std::vector<float>& w, int rows, int out, int in, std::vector<float>* y) {
  y->resize(static_cast<size_t>(rows) * out);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0f, x, in, w.data(), in,
              0.0f, y->data(), out);
}

// dW[out, in] += dyᵀ · x.
void add_weight_grad(const float* dy, const float* x, int rows, int out, int in, std::vector<float>* dw) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, rows, 1.0f, dy, out, x, in, 1.0f,
              dw->data(), in);
}

// dx[rows, in] = beta·dx + dy · W.
void input_grad(const float* dy, const std::vector<float>& w, int rows, int out, int in, float beta, float* dx) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in, out, 1.0f, dy, out, w.data(), in,
              beta, dx, in);
}

// out = rmsnorm(x)·g per row, keeping 1/rms per row (the engine's rmsnorm, sums in double).
void rmsnorm_rows(const std::vector<float>& x, const std::vector<float>& g, int rows, int n, float eps,
                  std::vector<float>* inv, std::vector<float>* out) {
  inv->resize(rows);
  out->resize(x.size());
  for (int r = 0; r < rows; ++r) {
    const float* xr = &x[static_cast<size_t>(r) * n];
    double ss = 0.0;
    for (int i = 0; i < n; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    (*inv)[r] = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
    for (int i = 0; i < n; ++i) (*out)[static_cast<size_t>(r) * n + i] = xr[i] * (*inv)[r] * g[i];
  }
}

// dx += the gradient through y = x·r·g with r = (mean(x²) + eps)^(−1/2), given dy.
void rmsnorm_backward(const std::vector<float>& x, const std::vector<float>& g, const std::vector<float>& inv,
                      const std::vector<float>& dy, int rows, int n, std::vector<float>* dx) {
  for (int r = 0; r < rows; ++r) {
    const size_t o = static_cast<size_t>(r) * n;
    double xu = 0.0;
    for (int i = 0; i < n; ++i) xu += static_cast<double>(x[o + i]) * dy[o + i] * g[i];
    const float ri = inv[r], k = static_cast<float>(xu) * ri * ri * ri / n;
    for (int i = 0; i < n; ++i) (*dx)[o + i] += ri * dy[o + i] * g[i] - k * x[o + i];
  }
}


// x[rows, dim] ← x · blockdiag(M_k) (transposed: x · blockdiag(M_kᵀ)), blocks [nb, b, b].
void blockdiag(std::vector<float>* x, int rows, int dim, const std::vector<float>& blocks, int nb,
               bool transposed) {
  const int b = dim / nb;
  std::vector<float> out(x->size());
  for (int k = 0; k < nb; ++k)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, transposed ? CblasTrans : CblasNoTrans, rows, b, b, 1.0f,
                x->data() + k * b, dim, blocks.data() + static_cast<size_t>(k) * b * b, b, 0.0f,
                out.data() + k * b, dim);
  *x = std::move(out);
}

float silu_sigmoid(float g) { return 1.0f / (1.0f + std::exp(-g)); }

}  // namespace

FloatBackprop::FloatBackprop(const FloatModel& fm)
    : fm_(fm),
      rope_(fm.config.head_dim(), fm.config.max_seq_len, fm.config.rope_theta),
      down_rotation_(make_hadamard(fm.down_hadamard)),
      saved_(fm.layers.size()) {}

void FloatBackprop::attention_forward(Saved& s) const {
  const ModelConfig& c = fm_.config;
  const int T = T_, D = c.dim, KV = c.kv_dim(), hd = c.head_dim(), H = c.n_heads;
  const int group = c.n_heads / c.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  s.probs.assign(static_cast<size_t>(H) * T * T, 0.0f);
  s.att.assign(static_cast<size_t>(T) * D, 0.0f);
  for (int h = 0; h < H; ++h) {
    const int kh = h / group;
    for (int i = 0; i < T; ++i) {
      float* p = &s.probs[(static_cast<size_t>(h) * T + i) * T];
      const float* q = &s.q[static_cast<size_t>(i) * D + h * hd];
      float max = -INFINITY;
      for (int j = 0; j <= i; ++j) {
        const float* k = &s.k[static_cast<size_t>(j) * KV + kh * hd];
        float dot = 0.0f;
        for (int d = 0; d < hd; ++d) dot += q[d] * k[d];
        p[j] = dot * scale;
        max = std::max(max, p[j]);
      }
      float sum = 0.0f;
      for (int j = 0; j <= i; ++j) sum += p[j] = std::exp(p[j] - max);
      float* o = &s.att[static_cast<size_t>(i) * D + h * hd];
      for (int j = 0; j <= i; ++j) {
        p[j] /= sum;
        const float* v = &s.v[static_cast<size_t>(j) * KV + kh * hd];
        for (int d = 0; d < hd; ++d) o[d] += p[j] * v[d];
      }
    }
  }
}

void FloatBackprop::attention_backward(const Saved& s, const float* datt, float* dq, float* dk,
                                       float* dv) const {
  const ModelConfig& c = fm_.config;
  const int T = T_, D = c.dim, KV = c.kv_dim(), hd = c.head_dim(), H = c.n_heads;
  const int group = c.n_heads / c.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::fill(dq, dq + static_cast<size_t>(T) * D, 0.0f);
  std::fill(dk, dk + static_cast<size_t>(T) * KV, 0.0f);
  std::fill(dv, dv + static_cast<size_t>(T) * KV, 0.0f);
  std::vector<float> dp(T);
  for (int h = 0; h < H; ++h) {
    const int kh = h / group;
    for (int i = 0; i < T; ++i) {
      const float* p = &s.probs[(static_cast<size_t>(h) * T + i) * T];
      const float* d_o = &datt[static_cast<size_t>(i) * D + h * hd];
      const float* q = &s.q[static_cast<size_t>(i) * D + h * hd];
      float* d_q = &dq[static_cast<size_t>(i) * D + h * hd];
      float p_dp = 0.0f;  // Σ_j p_j·dp_j, the softmax backward's shift
      for (int j = 0; j <= i; ++j) {
        const float* v = &s.v[static_cast<size_t>(j) * KV + kh * hd];
        float dot = 0.0f;
        for (int d = 0; d < hd; ++d) dot += d_o[d] * v[d];
        dp[j] = dot;
        p_dp += p[j] * dot;
      }
      for (int j = 0; j <= i; ++j) {
        const size_t kv = static_cast<size_t>(j) * KV + kh * hd;
        const float ds = p[j] * (dp[j] - p_dp) * scale;
        for (int d = 0; d < hd; ++d) {
          dv[kv + d] += p[j] * d_o[d];
          d_q[d] += ds * s.k[kv + d];
          dk[kv + d] += ds * q[d];
        }
      }
    }
  }
}

const std::vector<float>& FloatBackprop::forward(const std::vector<int>& tokens) {
  const ModelConfig& c = fm_.config;
  const int T = static_cast<int>(tokens.size());
  const int D = c.dim, KV = c.kv_dim(), I = c.hidden_dim, V = c.vocab_size;
  if (T == 0 || T > c.max_seq_len)
    throw Error("a window of " + std::to_string(T) + " tokens does not fit the model's " +
                std::to_string(c.max_seq_len) + " positions");
  T_ = T;
  std::vector<float> x(static_cast<size_t>(T) * D);
  for (int t = 0; t < T; ++t) {
    if (tokens[t] < 0 || tokens[t] >= V) throw Error("token id " + std::to_string(tokens[t]) + " is outside the vocabulary");
    std::copy_n(&fm_.embedding[static_cast<size_t>(tokens[t]) * D], D, &x[static_cast<size_t>(t) * D]);
  }
  std::vector<float> tmp;
  for (size_t l = 0; l < fm_.layers.size(); ++l) {
    const FloatLayer& w = fm_.layers[l];
    Saved& s = saved_[l];
    s.x = x;
    rmsnorm_rows(x, w.attn_norm, T, D, c.norm_eps, &s.inv_rms1, &s.a);
    linear(s.a.data(), w.wq, T, D, D, &s.q);
    linear(s.a.data(), w.wk, T, KV, D, &s.k);
    linear(s.a.data(), w.wv, T, KV, D, &s.v);
    for (int t = 0; t < T; ++t) {
      rope_.apply(&s.q[static_cast<size_t>(t) * D], c.n_heads, t);
      rope_.apply(&s.k[static_cast<size_t>(t) * KV], c.n_kv_heads, t);
    }
    attention_forward(s);
    linear(s.att.data(), w.wo, T, D, D, &tmp);
    if (!w.resid_attn.empty()) blockdiag(&x, T, D, w.resid_attn, fm_.resid_blocks, false);
    for (size_t i = 0; i < x.size(); ++i) x[i] += tmp[i];
    s.x1 = x;
    rmsnorm_rows(x, w.ffn_norm, T, D, c.norm_eps, &s.inv_rms2, &s.b);
    linear(s.b.data(), w.w_gate, T, I, D, &s.gate);
    linear(s.b.data(), w.w_up, T, I, D, &s.up);
    s.down_in.resize(s.gate.size());
    for (size_t i = 0; i < s.gate.size(); ++i)
      s.down_in[i] = s.gate[i] * silu_sigmoid(s.gate[i]) * s.up[i];
    if (down_rotation_)
      down_rotation_->apply_rows(s.down_in.data(), T, I, w.down_scale.empty() ? nullptr : w.down_scale.data());
    linear(s.down_in.data(), w.w_down, T, D, I, &tmp);
    if (!w.resid_mlp.empty()) blockdiag(&x, T, D, w.resid_mlp, fm_.resid_blocks, false);
    for (size_t i = 0; i < x.size(); ++i) x[i] += tmp[i];
  }
  final_x_ = x;
  rmsnorm_rows(x, fm_.final_norm, T, D, c.norm_eps, &final_inv_rms_, &final_out_);
  linear(final_out_.data(), fm_.classifier, T, V, D, &logits_);
  return logits_;
}

ModelGrads::ModelGrads(const FloatModel& fm) : layers(fm.layers.size()) {
  for (size_t l = 0; l < layers.size(); ++l) {
    const FloatLayer& w = fm.layers[l];
    LayerGrads& g = layers[l];
    for (auto [dw, wt] : {std::pair{&g.wq, &w.wq}, {&g.wk, &w.wk}, {&g.wv, &w.wv}, {&g.wo, &w.wo},
                          {&g.w_gate, &w.w_gate}, {&g.w_up, &w.w_up}, {&g.w_down, &w.w_down}})
      dw->assign(wt->size(), 0.0f);
  }
}

void ModelGrads::zero() {
  for (LayerGrads& g : layers)
    for (std::vector<float>* v : {&g.wq, &g.wk, &g.wv, &g.wo, &g.w_gate, &g.w_up, &g.w_down})
      std::fill(v->begin(), v->end(), 0.0f);
}

void FloatBackprop::backward(const std::vector<float>& dlogits, ModelGrads* grads) {
  const ModelConfig& c = fm_.config;
  const int T = T_, D = c.dim, KV = c.kv_dim(), I = c.hidden_dim, V = c.vocab_size;
  const size_t L = fm_.layers.size();
  if (grads->layers.size() != L) *grads = ModelGrads(fm_);

  std::vector<float> dy(static_cast<size_t>(T) * D), dx(static_cast<size_t>(T) * D, 0.0f);
  input_grad(dlogits.data(), fm_.classifier, T, V, D, 0.0f, dy.data());
  rmsnorm_backward(final_x_, fm_.final_norm, final_inv_rms_, dy, T, D, &dx);

  std::vector<float> dh(static_cast<size_t>(T) * I), dgate(dh.size()), dup(dh.size());
  std::vector<float> dq(static_cast<size_t>(T) * D), dk(static_cast<size_t>(T) * KV), dv(dk.size());
  for (size_t l = L; l-- > 0;) {
    const FloatLayer& w = fm_.layers[l];
    const Saved& s = saved_[l];
    LayerGrads& g = grads->layers[l];

    // x2 = blockdiag(x1) + down(down_in): dx holds dL/dx2.
    const std::vector<float> dout = dx;
    if (!w.resid_mlp.empty()) blockdiag(&dx, T, D, w.resid_mlp, fm_.resid_blocks, true);
    add_weight_grad(dout.data(), s.down_in.data(), T, D, I, &g.w_down);
    input_grad(dout.data(), w.w_down, T, D, I, 0.0f, dh.data());
    if (down_rotation_) {  // down_in = R4(h) ⊙ s: dh ← R4ᵀ(dh ⊙ s)
      if (!w.down_scale.empty())
        for (int t = 0; t < T; ++t)
          for (int i = 0; i < I; ++i) dh[static_cast<size_t>(t) * I + i] *= w.down_scale[i];
      down_rotation_->apply_inverse_rows(dh.data(), T, I);
    }
    for (size_t i = 0; i < dh.size(); ++i) {
      const float sg = silu_sigmoid(s.gate[i]), silu = s.gate[i] * sg;
      dgate[i] = dh[i] * s.up[i] * sg * (1.0f + s.gate[i] * (1.0f - sg));
      dup[i] = dh[i] * silu;
    }
    add_weight_grad(dgate.data(), s.b.data(), T, I, D, &g.w_gate);
    add_weight_grad(dup.data(), s.b.data(), T, I, D, &g.w_up);
    input_grad(dgate.data(), w.w_gate, T, I, D, 0.0f, dy.data());
    input_grad(dup.data(), w.w_up, T, I, D, 1.0f, dy.data());
    rmsnorm_backward(s.x1, w.ffn_norm, s.inv_rms2, dy, T, D, &dx);

    // x1 = blockdiag(x) + o_proj(att): dx holds dL/dx1.
    const std::vector<float> dattn_out = dx;
    if (!w.resid_attn.empty()) blockdiag(&dx, T, D, w.resid_attn, fm_.resid_blocks, true);
    add_weight_grad(dattn_out.data(), s.att.data(), T, D, D, &g.wo);
    input_grad(dattn_out.data(), w.wo, T, D, D, 0.0f, dy.data());
    attention_backward(s, dy.data(), dq.data(), dk.data(), dv.data());
    for (int t = 0; t < T; ++t) {
      rope_.apply_inverse(&dq[static_cast<size_t>(t) * D], c.n_heads, t);
      rope_.apply_inverse(&dk[static_cast<size_t>(t) * KV], c.n_kv_heads, t);
    }
    add_weight_grad(dq.data(), s.a.data(), T, D, D, &g.wq);
    add_weight_grad(dk.data(), s.a.data(), T, KV, D, &g.wk);
    add_weight_grad(dv.data(), s.a.data(), T, KV, D, &g.wv);
    input_grad(dq.data(), w.wq, T, D, D, 0.0f, dy.data());
    input_grad(dk.data(), w.wk, T, KV, D, 1.0f, dy.data());
    input_grad(dv.data(), w.wv, T, KV, D, 1.0f, dy.data());
    rmsnorm_backward(s.x, w.attn_norm, s.inv_rms1, dy, T, D, &dx);
  }
}

}  // namespace rotor
