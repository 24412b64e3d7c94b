#include "engine/session.h"

#include <algorithm>
#include <random>
#include <string>

#include "engine/error.h"
#include "engine/threads.h"

namespace rotor {

namespace {
// Prompts longer than this are prefilled in blocks, bounding the scratch memory.
constexpr int kMaxPrefillBlock = 512;

int resolve_ctx(const ModelConfig& c, int ctx) {
  if (ctx < 0) throw Error("context length " + std::to_string(ctx) + " is negative");
  if (ctx > c.max_seq_len)
    throw Error("context length " + std::to_string(ctx) + " exceeds the model's " +
                std::to_string(c.max_seq_len) + " positions");
  return ctx == 0 ? c.max_seq_len : ctx;
}
}  // namespace

Session::Session(const Model& model, int ctx)
    : model_(model),
      c_(model.config),
      ctx_(resolve_ctx(model.config, ctx)),
      max_batch_(std::min(ctx_, kMaxPrefillBlock)),
      rope_(c_.head_dim(), ctx_, c_.rope_theta),
      cache_(c_.n_layers, ctx_, c_.n_kv_heads, c_.head_dim(), model.kv_bits(),
             model.recipe.kv_k_group) {
  const size_t B = max_batch_;
  x_ = ZeroedArray<float>(B * c_.dim);
  xb_ = ZeroedArray<float>(B * c_.dim);
  q_ = ZeroedArray<float>(B * c_.dim);
  k_ = ZeroedArray<float>(B * c_.kv_dim());
  v_ = ZeroedArray<float>(B * c_.kv_dim());
  att_ = ZeroedArray<float>(B * c_.dim);
  gate_ = ZeroedArray<float>(B * c_.hidden_dim);
  up_ = ZeroedArray<float>(B * c_.hidden_dim);
  scores_.resize(ctx_);
  logits_ = ZeroedArray<float>(B * c_.vocab_size);
}

void Session::rewind(int pos) {
  if (pos < 0 || pos > pos_)
    throw Error("cannot rewind to position " + std::to_string(pos) + " of " +
                std::to_string(pos_), kExitInternal);
  pos_ = pos;  // the cache is per position: later entries are simply overwritten
}

void Session::fill_context(int n, uint64_t seed) {
  if (n < 0 || n > ctx_ - pos_)
    throw Error(std::to_string(n) + " positions do not fit in the context: " +
                std::to_string(pos_) + " of " + std::to_string(ctx_) + " are used");
  // A few distinct rows, reused: drawing every position's would cost more than it tells.
  constexpr int kRows = 61;
  const size_t kv = static_cast<size_t>(c_.kv_dim());
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> k(kRows * kv), v(kRows * kv);
  for (float& f : k) f = normal(rng);
  for (float& f : v) f = normal(rng);
  cache_.reserve(pos_ + n);
  for (int layer = 0; layer < c_.n_layers; ++layer)
    for (int p = pos_; p < pos_ + n; ++p)
      cache_.store(layer, p, &k[p % kRows * kv], &v[p % kRows * kv]);
  pos_ += n;
}

void Session::check_fits(const int* tokens, int n) const {
  if (n <= 0) throw Error("nothing to process: the token list is empty");
  if (n > ctx_ - pos_)
    throw Error(std::to_string(n) + " tokens do not fit in the context: " +
                std::to_string(pos_) + " of " + std::to_string(ctx_) + " positions are used");
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= c_.vocab_size)
      throw Error("token id " + std::to_string(tokens[i]) + " is outside the vocabulary of " +
                  std::to_string(c_.vocab_size));
}

const float* Session::prefill(const std::vector<int>& tokens, std::vector<float>* all_logits) {
  const int n = static_cast<int>(tokens.size());
  check_fits(tokens.data(), n);
  const size_t V = c_.vocab_size;
  if (all_logits) all_logits->resize(static_cast<size_t>(n) * V);
  cache_.reserve(pos_ + n);
  for (int start = 0; start < n; start += max_batch_) {
    const int rows = std::min(max_batch_, n - start);
    const bool last_block = start + rows == n;
    forward(&tokens[start], rows, all_logits ? rows : (last_block ? 1 : 0));
    if (all_logits)
      std::copy(logits_.begin(), logits_.begin() + rows * V, all_logits->begin() + start * V);
  }
  return all_logits ? all_logits->data() + (n - 1) * V
                    : logits_.data();
}

const float* Session::decode(int token) {
  check_fits(&token, 1);
  forward(&token, 1, 1);
  return logits_.data();
}

void Session::forward(const int* tokens, int n, int logit_rows) {
  const int D = c_.dim, KV = c_.kv_dim(), I = c_.hidden_dim, hd = c_.head_dim();
  const int group = c_.n_heads / c_.n_kv_heads;
  const OnlineRotations& online = model_.online;
  StepClock clock(profile_);
  for (int r = 0; r < n; ++r)
    model_.embedding->lookup(tokens[r], &x_[r * D]);
  clock.lap(Step::kEmbedding);

  for (int l = 0; l < c_.n_layers; ++l) {
    const LayerWeights& w = model_.layers[l];
    for (int r = 0; r < n; ++r) rmsnorm(&x_[r * D], w.attn_norm, D, c_.norm_eps, &xb_[r * D]);
    if (observer_) observer_->observe(l, LinearInput::kAttention, xb_.data(), n, D);
    clock.lap(Step::kNorm);
    const Linear* qkv[] = {w.wq.get(), w.wk.get(), w.wv.get()};
    float* const qkv_out[] = {q_.data(), k_.data(), v_.data()};
    forward_shared(qkv, 3, xb_.data(), n, qkv_out);
    clock.lap(Step::kQkv);
    for (int r = 0; r < n; ++r) {
      const int pos = pos_ + r;
      rope_.apply(&q_[r * D], c_.n_heads, pos);
      rope_.apply(&k_[r * KV], c_.n_kv_heads, pos);
      if (online.qk) {  // R3: cancels in q·kᵀ, spreads K's outlier channels before the cache
        online.qk->apply_rows(&q_[r * D], c_.n_heads, hd);
        online.qk->apply_rows(&k_[r * KV], c_.n_kv_heads, hd);
      }
      cache_.store(l, pos, &k_[r * KV], &v_[r * KV]);
    }
    clock.lap(Step::kRopeCache);
    // One task per (token, KV head) for the query heads that share it (consecutive in q);
    // each worker has its own rows of scores. Short of kMinParallelWork multiply-adds (q·k and
    // the V sums of every query head, each token counted at the block's last position) the
    // calling thread does them all.
    const size_t worker_scores = static_cast<size_t>(group) * ctx_;
    scores_.resize(worker_scores * thread_pool().size());
    auto attend_task = [&](int task, int worker) {
      const int r = task / c_.n_kv_heads, kvh = task % c_.n_kv_heads;
      const size_t at = static_cast<size_t>(r) * D + static_cast<size_t>(kvh) * group * hd;
      cache_.attend(l, kvh, &q_[at], group, pos_ + r + 1, &scores_[worker * worker_scores],
                    &att_[at]);
    };
    const int tasks = n * c_.n_kv_heads;
    if (workers_for(int64_t{2} * n * c_.n_heads * (pos_ + n) * hd) == 1)
      for (int task = 0; task < tasks; ++task) attend_task(task, 0);
    else
      thread_pool().parallel_for(tasks, attend_task);
    if (observer_) observer_->observe(l, LinearInput::kAttentionOut, att_.data(), n, D);
    clock.lap(Step::kAttention);
    w.wo->forward(att_.data(), n, xb_.data());
    clock.lap(Step::kOutProj);
    if (w.resid_attn) {
      blockdiag_matmul(x_.data(), n, D, w.resid_attn, online.resid_blocks, att_.data());
      clock.lap(Step::kResidBlocks);
    }
    for (int i = 0; i < n * D; ++i) x_[i] += xb_[i];
    clock.lap(Step::kResidual);

    for (int r = 0; r < n; ++r) rmsnorm(&x_[r * D], w.ffn_norm, D, c_.norm_eps, &xb_[r * D]);
    if (observer_) observer_->observe(l, LinearInput::kMlp, xb_.data(), n, D);
    clock.lap(Step::kNorm);
    const Linear* gate_up[] = {w.w_gate.get(), w.w_up.get()};
    float* const gate_up_out[] = {gate_.data(), up_.data()};
    forward_shared(gate_up, 2, xb_.data(), n, gate_up_out);
    clock.lap(Step::kGateUp);
    swiglu(gate_.data(), up_.data(), n * I);
    clock.lap(Step::kSwiglu);
    // R4, with BDQ's 1/s fused into its last pass (without R4, s is folded into up_proj).
    if (online.down) {
      online.down->apply_rows(gate_.data(), n, I, w.down_scale);
      clock.lap(Step::kR4);
    }
    if (observer_) observer_->observe(l, LinearInput::kMlpDown, gate_.data(), n, I);
    w.w_down->forward(gate_.data(), n, xb_.data());
    clock.lap(Step::kDown);
    if (w.resid_mlp) {
      blockdiag_matmul(x_.data(), n, D, w.resid_mlp, online.resid_blocks, att_.data());
      clock.lap(Step::kResidBlocks);
    }
    for (int i = 0; i < n * D; ++i) x_[i] += xb_[i];
    clock.lap(Step::kResidual);
  }
  pos_ += n;

  if (observer_) {  // the classifier's input at every position, not only the logit rows
    for (int r = 0; r < n; ++r) rmsnorm(&x_[r * D], model_.final_norm, D, c_.norm_eps, &xb_[r * D]);
    observer_->observe(c_.n_layers, LinearInput::kClassifier, xb_.data(), n, D);
  }
  if (logit_rows == 0) return;
  const int first = n - logit_rows;
  for (int r = first; r < n; ++r)
    rmsnorm(&x_[r * D], model_.final_norm, D, c_.norm_eps, &xb_[(r - first) * D]);
  clock.lap(Step::kNorm);
  model_.classifier->forward(xb_.data(), logit_rows, logits_.data());
  clock.lap(Step::kClassifier);
}

}  // namespace rotor
