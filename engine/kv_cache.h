// Keys and values of every processed position, per layer, and attention that reads them.
// Stored per (position, KV head) as floats (bits ≥ 16) or as asymmetric 8- or 4-bit codes with
// a scale and minimum each, in f16 (METHODS.md §1); attention reads the codes directly.
//
// With a K group G > 0 (Recipe::kv_k_group) K is stored per channel instead (KIVI): for each
// (layer, KV head) the positions form groups of G, each channel of a complete group has its own
// scale and minimum (in f16) over those G positions, and the newest, incomplete group stays in
// float until it fills. Attention at n_pos sees exactly that state, in prefill as in decode:
// rows of a group that filled later in the same block are read from a float copy of the block.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/zeroed_array.h"

namespace rotor {

class KvCache {
 public:
  // k_group: 0 or a multiple of 16 (ignored for a float cache). A cache of at most whole_bytes
  // at the full context gives each layer room for all of it at its first store instead of
  // growing it (Layer).
  KvCache(int n_layers, int ctx, int n_kv_heads, int head_dim, int bits, int k_group = 0,
          size_t whole_bytes = kWholeBytes);
  static constexpr size_t kWholeBytes = size_t{32} << 20;
  // Throws the Error the constructor would for a head size, bit width (≥ 16: float) and K
  // group the kernels cannot walk: the tools that write a file check its recipe with it.
  static void check_shape(int head_dim, int bits, int k_group);

  int ctx() const { return ctx_; }
  int bits() const { return bits_; }
  // Room for positions [0, n) in every layer (n ≤ ctx): a prompt's block grows the cache once
  // instead of doubling through its lengths.
  void reserve(int n);
  // The positions layer has room for now (0 before its first store).
  int room(int layer) const { return layers_[layer].positions; }
  // Stores one position's keys and values (n_kv_heads · head_dim each, K after RoPE). pos is at
  // most the number of positions stored in this layer; a smaller one forgets the positions
  // from pos on first (a rewind: the kept part of a complete group returns to float).
  void store(int layer, int pos, const float* k, const float* v);
  // For the n_q query heads that share kv_head (q and out: n_q rows of head_dim),
  // out_h = softmax(q_h · Kᵀ / sqrt(head_dim)) · V over positions [0, n_pos).
  // scores is scratch space of at least n_q · n_pos floats.
  void attend(int layer, int kv_head, const float* q, int n_q, int n_pos, float* scores,
              float* out) const;

 private:
  // One layer's storage, with room for `positions` positions per head. Each head's positions
  // are contiguous, so attention streams them (a stride of all heads cost a page per few
  // positions at 7B shapes). The arrays ask for 2 MB pages (ZeroedArray), which a short prompt
  // would materialize whole at the full context's size, so a layer starts with room for
  // kFirstPositions and doubles as it fills. Layers double at different positions (ahead of
  // need, by a lead that rises with the layer index): doubling them all at one token stalled it
  // for the whole cache's new 2 MB pages, up to 1.3 s at 7B shape (docs/BENCHMARKS.md). A small
  // cache (whole_bytes) skips the growth: with other threads in the process, each doubling's
  // system calls and the TLB shootdowns of its unmapped arrays cost stories260K 150–200 µs a
  // layer (a token takes ~32 µs), for memory a few kilobytes would have covered.
  struct Layer {
    int positions = 0;
    ZeroedArray<float> kf, vf;                          // floats: [head][pos][head_dim]
    ZeroedArray<uint8_t> kq, vq;                        // codes: [head][pos][head_bytes]
    ZeroedArray<uint16_t> k_scale, k_min, v_scale, v_min;  // f16, [head][pos]
    ZeroedArray<uint8_t> kg_codes;  // K groups: [head][group][channel][G · bits / 8]
    ZeroedArray<uint16_t> kg_scale, kg_min;  // f16, [head][group][channel]
  };
  static constexpr int kFirstPositions = 256;
  int first_positions_;  // a layer's room at its first store: kFirstPositions or ctx
  // Room for positions [0, n) in layer (n ≤ ctx): a larger Layer, the stored positions copied.
  void reserve(int layer, int n);
  Layer make_layer(int positions) const;
  // Index of (head, pos) and of (head, group, channel 0) within a layer's arrays.
  size_t slot(int layer, int head, int pos) const;
  size_t group_index(int layer, int head, int group) const;
  void attend_float(int layer, int kv_head, const float* q, int n_pos, float* scores,
                    float* out) const;
  void store_k_group(int layer, int pos, const float* k);
  void truncate(int layer, int pos);

  int ctx_, n_kv_heads_, head_dim_, bits_;
  size_t head_bytes_;  // bytes of one quantized head vector
  std::vector<Layer> layers_;

  // The K groups (k_group_ > 0).
  int k_group_ = 0, n_groups_ = 0;       // n_groups_: the complete groups that fit in ctx
  size_t group_bytes_ = 0;               // codes of one (head, group): head_dim · G · bits / 8
  // Each layer's newest group in float, one row per position as the model writes them (by
  // channel, each row went to a cache line per channel): [layer][G][head][head_dim].
  std::vector<float> k_partial_;
  std::vector<int> stored_;              // positions stored, per layer
  // The float values of the groups that filled in the current block of stores to stage_layer_,
  // from group stage_group_ on: [group − stage_group_][G][head][head_dim].
  std::vector<float> stage_;
  int stage_layer_ = -1, stage_group_ = 0, stage_next_ = 0;  // next: the position that continues it
};

}  // namespace rotor
