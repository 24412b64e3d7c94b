#include "engine/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/error.h"
#include "engine/import/dtype.h"
#include "engine/kernels/kernels.h"
#include "engine/ops.h"
#include "engine/scratch.h"
#include "engine/vector_lanes.h"

namespace rotor {

namespace {
// x ≈ scale·code + min, code ∈ [0, 2^bits − 1].
struct Range {
  float scale, min;
};

// The range and the codes are computed on 4-lane vector types (vector_lanes.h): -O2 left
// std::min of floats a branch per value, and nearbyint was a libm call per value (a 7B token's
// keys and values, K per token, took 1.1 ms to store, now 0.45).

// The range of x[0, n), shrunk around its middle by clip.
Range clipped_range(const float* x, int n, int bits, float clip) {
  const int n4 = n / 4 * 4;
  Floats4 lo = {x[0], x[0], x[0], x[0]}, hi = lo;
  for (int i = 0; i < n4; i += 4) {
    Floats4 v;
    load_lanes(v, x + i);
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  float low = std::min(std::min(lo[0], lo[1]), std::min(lo[2], lo[3]));
  float high = std::max(std::max(hi[0], hi[1]), std::max(hi[2], hi[3]));
  for (int i = n4; i < n; ++i) {
    low = std::min(low, x[i]);
    high = std::max(high, x[i]);
  }
  const float mid = 0.5f * (low + high);
  low = mid + (low - mid) * clip;
  high = mid + (high - mid) * clip;
  const int levels = (1 << bits) - 1;
  return {high > low ? (high - low) / levels : 1.0f, low};
}

// codes[i] = (x[i] − min) / scale clamped to [0, 2^bits − 1] (NaN to 0) and rounded to nearest
// even as nearbyint does, by adding and subtracting 1.5·2^23; i < n.
void codes_of(const float* x, int n, Range r, int bits, uint8_t* codes) {
  constexpr float kRound = 12582912.0f;
  const float levels = static_cast<float>((1 << bits) - 1);
  const auto code = [&](auto v) {
    v = (v - r.min) / r.scale;
    v = v > 0.0f ? v : 0.0f;
    v = v < levels ? v : levels;
    return (v + kRound) - kRound;
  };
  const int n4 = n / 4 * 4;
  for (int i = 0; i < n4; i += 4) {
    Floats4 v;
    load_lanes(v, x + i);
    const Ints4 c = __builtin_convertvector(code(v), Ints4);
    for (int j = 0; j < 4; ++j) codes[i + j] = static_cast<uint8_t>(c[j]);
  }
  for (int i = n4; i < n; ++i) codes[i] = static_cast<uint8_t>(code(x[i]));
}

// A range's scale or minimum in f16 (KvView): values past the f16 range saturate, so a cache of
// huge keys stays finite (its codes then clamp) instead of turning attention into NaN.
uint16_t f16_of(float x) {
  constexpr float kLargest = 65504.0f;
  return f32_to_f16(std::clamp(x, -kLargest, kLargest));
}

// codes_of against r rounded to f16, which is stored in scale and min: the codes then make up
// for the rounding of the minimum.
void codes_of_f16(const float* x, int n, Range r, int bits, uint8_t* codes, uint16_t* scale,
                  uint16_t* min) {
  *scale = f16_of(r.scale);
  *min = f16_of(r.min);
  codes_of(x, n, Range{f16_to_f32(*scale), f16_to_f32(*min)}, bits, codes);
}

// 4-bit codes lose too much at the extremes of a 16-level range; a 0.9 clip (METHODS.md §1)
// trades a little saturation for finer steps. 8-bit keeps the full range.
float clip_for(int bits) { return bits == 4 ? 0.9f : 1.0f; }

// Asymmetric per-vector quantization: x ≈ scale·code + min (both f16); at 4 bits x[2i] in the
// low nibble of codes[i], x[2i + 1] in the high one.
void quantize_vector(const float* x, int n, int bits, uint8_t* codes, uint16_t* scale,
                     uint16_t* min) {
  const Range r = clipped_range(x, n, bits, clip_for(bits));
  if (bits == 8) return codes_of_f16(x, n, r, bits, codes, scale, min);
  thread_local std::vector<uint8_t> storage;
  uint8_t* c = scratch(storage, n + 1);
  codes_of_f16(x, n, r, bits, c, scale, min);
  c[n] = 0;  // the high nibble of an odd n's last byte
  for (int i = 0; i < (n + 1) / 2; ++i)
    codes[i] = static_cast<uint8_t>(c[2 * i] | c[2 * i + 1] << 4);
}

}  // namespace

void KvCache::check_shape(int head_dim, int bits, int k_group) {
  if (bits >= 16) return;
  // The K scores sum q'·code over the channels in int32 (kv_kernels.h): up to 256 fit.
  if (head_dim > 256)
    throw Error("a quantized K/V cache needs a head size of at most 256, not " +
                std::to_string(head_dim));
  if (k_group == 0) return;
  // The kernels step through a group 16 positions at a time, and through the channels in
  // blocks of 2 (8-bit) or 4 (4-bit).
  if (k_group < 0 || k_group % 16)
    throw Error("K cache group of " + std::to_string(k_group) +
                " positions is not a multiple of 16");
  const int block = bits == 8 ? 2 : 4;
  if (head_dim % block)
    throw Error("K cache groups need a head size that is a multiple of " +
                std::to_string(block) + ", not " + std::to_string(head_dim));
}

KvCache::KvCache(int n_layers, int ctx, int n_kv_heads, int head_dim, int bits, int k_group,
                 size_t whole_bytes)
    : first_positions_(kFirstPositions),
      ctx_(ctx),
      n_kv_heads_(n_kv_heads),
      head_dim_(head_dim),
      bits_(bits >= 16 ? 32 : bits),
      head_bytes_(static_cast<size_t>(head_dim) * (bits >= 16 ? 4 : bits) / 8) {
  check_shape(head_dim, bits, k_group);
  layers_.resize(n_layers);
  // Bytes per position and KV head: codes (or floats) and their f16 ranges, K's per group
  // spread over the group's positions.
  const size_t ranges = 2 * sizeof(uint16_t);
  const size_t k_bytes = bits_ == 32     ? head_dim * sizeof(float)
                         : k_group == 0 ? head_bytes_ + ranges
                                        : head_bytes_ + ranges * head_dim / k_group;
  const size_t v_bytes = bits_ == 32 ? head_dim * sizeof(float) : head_bytes_ + ranges;
  const size_t slots = static_cast<size_t>(n_layers) * ctx * n_kv_heads;
  if (slots * (k_bytes + v_bytes) <= whole_bytes) first_positions_ = ctx;
  if (bits_ == 32 || k_group == 0) return;
  k_group_ = k_group;
  n_groups_ = ctx / k_group;
  group_bytes_ = static_cast<size_t>(head_dim) * k_group * bits_ / 8;
  k_partial_.resize(static_cast<size_t>(n_layers) * k_group * n_kv_heads * head_dim);
  stored_.assign(n_layers, 0);
}

KvCache::Layer KvCache::make_layer(int positions) const {
  Layer l;
  l.positions = positions;
  const size_t slots = static_cast<size_t>(n_kv_heads_) * positions;
  constexpr Pages kHuge = Pages::kHuge;
  if (bits_ == 32) {
    l.kf = ZeroedArray<float>(slots * head_dim_, kHuge);
    l.vf = ZeroedArray<float>(slots * head_dim_, kHuge);
    return l;
  }
  l.vq = ZeroedArray<uint8_t>(slots * head_bytes_, kHuge);
  l.v_scale = ZeroedArray<uint16_t>(slots, kHuge);
  l.v_min = ZeroedArray<uint16_t>(slots, kHuge);
  if (k_group_ == 0) {
    l.kq = ZeroedArray<uint8_t>(slots * head_bytes_, kHuge);
    l.k_scale = ZeroedArray<uint16_t>(slots, kHuge);
    l.k_min = ZeroedArray<uint16_t>(slots, kHuge);
    return l;
  }
  const size_t groups = static_cast<size_t>(n_kv_heads_) * (positions / k_group_);
  l.kg_codes = ZeroedArray<uint8_t>(groups * group_bytes_, kHuge);
  l.kg_scale = ZeroedArray<uint16_t>(groups * head_dim_, kHuge);
  l.kg_min = ZeroedArray<uint16_t>(groups * head_dim_, kHuge);
  return l;
}

void KvCache::reserve(int n) {
  for (int layer = 0; layer < static_cast<int>(layers_.size()); ++layer) reserve(layer, n);
}

void KvCache::reserve(int layer, int n) {
  Layer& old = layers_[layer];
  if (n <= old.positions) return;
  if (n > ctx_)
    throw Error("KV cache: room for " + std::to_string(n) + " positions is past the context of " +
                std::to_string(ctx_), kExitInternal);
  // Doubling keeps the copies to about one cache's worth in all; whole K groups.
  const int unit = std::max(k_group_, 1);
  int positions = std::max(old.positions, first_positions_);
  while (positions < n) positions *= 2;
  positions = std::min(ctx_, (positions + unit - 1) / unit * unit);
  Layer grown = make_layer(positions);
  // Each head's run of `from` elements per position (or group) to its new place.
  const auto copy = [&](const auto& from, auto& to, size_t from_run, size_t to_run) {
    if (from.size() == 0) return;
    for (int h = 0; h < n_kv_heads_; ++h)
      std::copy_n(from.data() + h * from_run, from_run, to.data() + h * to_run);
  };
  const size_t p0 = old.positions, p1 = positions;
  copy(old.kf, grown.kf, p0 * head_dim_, p1 * head_dim_);
  copy(old.vf, grown.vf, p0 * head_dim_, p1 * head_dim_);
  copy(old.kq, grown.kq, p0 * head_bytes_, p1 * head_bytes_);
  copy(old.vq, grown.vq, p0 * head_bytes_, p1 * head_bytes_);
  for (auto a : {&Layer::k_scale, &Layer::k_min, &Layer::v_scale, &Layer::v_min})
    copy(old.*a, grown.*a, p0, p1);
  if (k_group_) {
    const size_t g0 = p0 / k_group_, g1 = p1 / k_group_;
    copy(old.kg_codes, grown.kg_codes, g0 * group_bytes_, g1 * group_bytes_);
    copy(old.kg_scale, grown.kg_scale, g0 * head_dim_, g1 * head_dim_);
    copy(old.kg_min, grown.kg_min, g0 * head_dim_, g1 * head_dim_);
  }
  old = std::move(grown);
}

size_t KvCache::slot(int layer, int head, int pos) const {
  return static_cast<size_t>(head) * layers_[layer].positions + pos;
}

size_t KvCache::group_index(int layer, int head, int group) const {
  return static_cast<size_t>(head) * (layers_[layer].positions / k_group_) + group;
}

void KvCache::store(int layer, int pos, const float* k, const float* v) {
  if (pos >= ctx_)
    throw Error("KV cache: position " + std::to_string(pos) + " is past the context of " +
                std::to_string(ctx_), kExitInternal);
  // Layer l of L doubles once a store reaches l / 2L of its room before the end, so each
  // layer's new pages come at a different token (a lead under half the room: one doubling
  // still covers it).
  const int64_t lead = int64_t{layers_[layer].positions} * layer /
                       (2 * static_cast<int64_t>(layers_.size()));
  reserve(layer, static_cast<int>(std::min<int64_t>(ctx_, pos + 1 + lead)));
  Layer& l = layers_[layer];
  for (int h = 0; h < n_kv_heads_; ++h) {
    const size_t i = slot(layer, h, pos);
    if (bits_ == 32) {
      std::copy(k + h * head_dim_, k + (h + 1) * head_dim_, l.kf.begin() + i * head_dim_);
      std::copy(v + h * head_dim_, v + (h + 1) * head_dim_, l.vf.begin() + i * head_dim_);
      continue;
    }
    quantize_vector(v + h * head_dim_, head_dim_, bits_, &l.vq[i * head_bytes_], &l.v_scale[i],
                    &l.v_min[i]);
    if (!k_group_)
      quantize_vector(k + h * head_dim_, head_dim_, bits_, &l.kq[i * head_bytes_],
                      &l.k_scale[i], &l.k_min[i]);
  }
  if (k_group_) store_k_group(layer, pos, k);
}

void KvCache::store_k_group(int layer, int pos, const float* k) {
  if (pos > stored_[layer])
    throw Error("K cache: position " + std::to_string(pos) + " stored after " +
                std::to_string(stored_[layer]) + " positions", kExitInternal);
  if (pos < stored_[layer]) truncate(layer, pos);
  const int G = k_group_, g = pos / G, row = pos % G;
  const size_t row_floats = static_cast<size_t>(n_kv_heads_) * head_dim_;
  float* partial = &k_partial_[static_cast<size_t>(layer) * G * row_floats];
  std::copy(k, k + row_floats, partial + row * row_floats);
  stored_[layer] = pos + 1;
  if (layer != stage_layer_ || pos != stage_next_) {  // a new block of stores
    stage_layer_ = layer;
    stage_group_ = g;
  }
  stage_next_ = pos + 1;
  if (row < G - 1 || g >= n_groups_) return;  // the group is not complete (or ctx ends first)

  // Quantize the complete group channel by channel (each head's rows turned into channels
  // first), and keep its float rows for the attention of this block's earlier positions.
  thread_local std::vector<uint8_t> code_storage;
  thread_local std::vector<float> channel_storage;
  uint8_t* channel_codes = scratch(code_storage, static_cast<size_t>(G));
  float* channels = scratch(channel_storage, static_cast<size_t>(head_dim_) * G);
  Layer& l = layers_[layer];
  for (int h = 0; h < n_kv_heads_; ++h) {
    const size_t gi = group_index(layer, h, g);
    uint8_t* codes = &l.kg_codes[gi * group_bytes_];
    std::fill(codes, codes + group_bytes_, 0);
    for (int p = 0; p < G; ++p)
      for (int c = 0; c < head_dim_; ++c)
        channels[c * G + p] = partial[p * row_floats + static_cast<size_t>(h) * head_dim_ + c];
    for (int c = 0; c < head_dim_; ++c) {
      const float* x = channels + c * G;
      // The full range: a channel's values over G positions have no outliers to clip the way
      // a token's values over its channels do (a clip search gained 0.03% ppl, clip 0.9 lost).
      codes_of_f16(x, G, clipped_range(x, G, bits_, 1.0f), bits_, channel_codes,
                   &l.kg_scale[gi * head_dim_ + c], &l.kg_min[gi * head_dim_ + c]);
      // Every position of a channel has the same slot but for 2 bytes per position.
      const KiviSlot at = kivi_slot(G, bits_, c, 0);
      for (int p = 0; p < G; ++p)
        codes[at.byte + 2 * p] |= static_cast<uint8_t>(channel_codes[p] << at.shift);
    }
  }
  const size_t at = static_cast<size_t>(g - stage_group_) * G * row_floats;
  if (stage_.size() < at + G * row_floats) stage_.resize(at + G * row_floats);
  std::copy(partial, partial + G * row_floats, stage_.begin() + at);
}

void KvCache::truncate(int layer, int pos) {
  const int G = k_group_, g = pos / G, kept = pos % G;
  const bool complete = stored_[layer] >= (g + 1) * G && g < n_groups_;
  stored_[layer] = pos;
  stage_layer_ = -1;
  if (!complete || kept == 0) return;  // the float rows of the group are still in place
  const size_t row_floats = static_cast<size_t>(n_kv_heads_) * head_dim_;
  float* partial = &k_partial_[static_cast<size_t>(layer) * G * row_floats];
  const Layer& l = layers_[layer];
  for (int h = 0; h < n_kv_heads_; ++h) {
    const size_t gi = group_index(layer, h, g);
    const uint8_t* codes = &l.kg_codes[gi * group_bytes_];
    for (int c = 0; c < head_dim_; ++c) {
      const Range r{f16_to_f32(l.kg_scale[gi * head_dim_ + c]),
                    f16_to_f32(l.kg_min[gi * head_dim_ + c])};
      float* x = partial + static_cast<size_t>(h) * head_dim_ + c;
      for (int p = 0; p < kept; ++p)
        x[p * row_floats] = r.scale * kivi_code(codes, G, bits_, c, p) + r.min;
    }
  }
}

void KvCache::attend(int layer, int kv_head, const float* q, int n_q, int n_pos, float* scores,
                     float* out) const {
  if (bits_ == 32) {
    for (int h = 0; h < n_q; ++h)
      attend_float(layer, kv_head, q + h * head_dim_, n_pos, scores, out + h * head_dim_);
    return;
  }
  const Layer& l = layers_[layer];
  const size_t i = slot(layer, kv_head, 0);
  KvView kv;
  kv.head_dim = head_dim_;
  kv.bits = bits_;
  kv.v_codes = &l.vq[i * head_bytes_];
  kv.v_scale = &l.v_scale[i];
  kv.v_min = &l.v_min[i];
  if (!k_group_) {
    kv.k_codes = &l.kq[i * head_bytes_];
    kv.k_scale = &l.k_scale[i];
    kv.k_min = &l.k_min[i];
  } else {
    const int G = k_group_, g = n_pos / G;
    const size_t gi = group_index(layer, kv_head, 0);
    const size_t row_floats = static_cast<size_t>(n_kv_heads_) * head_dim_;
    kv.k_group = G;
    kv.k_group_codes = l.kg_codes.data() + gi * group_bytes_;
    kv.k_group_scale = l.kg_scale.data() + gi * head_dim_;
    kv.k_group_min = l.kg_min.data() + gi * head_dim_;
    kv.k_float_stride = row_floats;
    // The positions after the last complete group: the layer's newest group, or one that
    // filled later in this block.
    if (g == (stored_[layer] - 1) / G || g >= n_groups_)
      kv.k_float = &k_partial_[static_cast<size_t>(layer) * G * row_floats];
    else if (n_pos % G == 0)
      kv.k_float = nullptr;
    else if (layer == stage_layer_ && g >= stage_group_)
      kv.k_float = &stage_[static_cast<size_t>(g - stage_group_) * G * row_floats];
    else
      throw Error("K cache: no float rows for position " + std::to_string(n_pos - 1), kExitInternal);
    if (kv.k_float) kv.k_float += static_cast<size_t>(kv_head) * head_dim_;
  }
  kernels().attend(kv, q, n_q, n_pos, scores, out);
}

void KvCache::attend_float(int layer, int kv_head, const float* q, int n_pos, float* scores,
                           float* out) const {
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
  const size_t base = slot(layer, kv_head, 0) * head_dim_;
  const float* k = &layers_[layer].kf[base];
  const float* v = &layers_[layer].vf[base];
  for (int t = 0; t < n_pos; ++t) {
    float dot = 0.0f;
    for (int i = 0; i < head_dim_; ++i) dot += q[i] * k[t * head_dim_ + i];
    scores[t] = dot * scale;
  }
  softmax(scores, n_pos);
  std::fill(out, out + head_dim_, 0.0f);
  for (int t = 0; t < n_pos; ++t)
    for (int i = 0; i < head_dim_; ++i) out[i] += scores[t] * v[t * head_dim_ + i];
}

}  // namespace rotor
