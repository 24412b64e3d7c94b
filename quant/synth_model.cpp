#include "quant/synth_model.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/error.h"
#include "engine/hadamard.h"
#include "engine/kernels/pack.h"
#include "engine/kv_cache.h"
#include "quant/hadamard_tables.h"
#include "quant/rotate_model.h"
#include "quant/rotor_writer.h"
#include "quant/weight_quantizer.h"

namespace rotor {

namespace {

// Real LLaMA weights are roughly N(0, 0.02); the scales give the random codes that spread.
constexpr double kWeightStd = 0.02;
// Rows generated at a time: bounds the unpacked codes held in memory.
constexpr int kRowsPerChunk = 256;

}  // namespace

RandomPackedMatrices::RandomPackedMatrices(uint64_t seed) : rng_(seed) {}

QuantizedMatrix RandomPackedMatrices::operator()(int rows, int cols, const WeightQuantSpec& spec) {
  QuantizedMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.bits = spec.bits;
  plan_layout(cols, spec, &m.cols_padded, &m.group, &m.block);
  const size_t row_bytes = packed_row_bytes(m.cols_padded, m.bits);
  m.codes.resize(rows * row_bytes);
  m.scales.resize(static_cast<size_t>(rows) * m.groups());
  m.zeros.resize(m.scales.size());
  m.sums.resize(static_cast<size_t>(rows) * m.blocks());

  // The standard deviation of codes uniform over 2^b values is √((4^b − 1)/12).
  const double levels = std::ldexp(1.0, m.bits);
  const double scale = kWeightStd / std::sqrt((levels * levels - 1) / 12);
  for (size_t i = 0; i < m.scales.size(); ++i) {
    const uint64_t r = rng_();
    m.scales[i] = static_cast<float>(scale * (0.5 + unit(r)));  // ×0.5..1.5: not all alike
    // Uniform codes average −1/2; zero points −1 and 0 in equal measure keep weights centred.
    m.zeros[i] = spec.sym ? 0 : static_cast<int32_t>(r & 1) - 1;
  }

  std::vector<int8_t> codes(static_cast<size_t>(kRowsPerChunk) * m.cols_padded);
  for (int r0 = 0; r0 < rows; r0 += kRowsPerChunk) {
    const int n = std::min(kRowsPerChunk, rows - r0);
    fill_codes(codes.data(), static_cast<size_t>(n) * m.cols_padded, m.bits);
    for (int r = 0; r < n; ++r)  // padding columns hold their group's zero point
      for (int j = cols; j < m.cols_padded; ++j)
        codes[static_cast<size_t>(r) * m.cols_padded + j] =
            static_cast<int8_t>(m.zeros[static_cast<size_t>(r0 + r) * m.groups() + j / m.group]);
    pack_weight_codes(codes.data(), n, m.cols_padded, m.bits, &m.codes[r0 * row_bytes]);
    weight_block_sums(codes.data(), n, m.cols_padded, m.block,
                      &m.sums[static_cast<size_t>(r0) * m.blocks()]);
  }
  return m;
}

double RandomPackedMatrices::unit(uint64_t r) { return static_cast<double>(r >> 11) * 0x1.0p-53; }

void RandomPackedMatrices::fill_codes(int8_t* out, size_t n, int bits) {
  const int per_draw = 64 / bits;
  const int offset = 1 << (bits - 1);
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  for (size_t i = 0; i < n;) {
    uint64_t r = rng_();
    for (int k = 0; k < per_draw && i < n; ++k, ++i, r >>= bits)
      out[i] = static_cast<int8_t>(static_cast<int>(r & mask) - offset);
  }
}

uint64_t write_synth_model(const ModelConfig& c, const Recipe& recipe,
                           const std::string& tokenizer_bytes, const std::string& hadamard_dir,
                           const std::string& path,
                           const std::function<void(int done, int total)>& progress) {
  c.validate("synthetic model");
  KvCache::check_shape(c.head_dim(), recipe.kv_bits, recipe.kv_k_group);  // a file that runs
  if (recipe.w_bits != 4 && recipe.w_bits != 8)
    throw Error("synthetic models have 4- or 8-bit weights, not " + std::to_string(recipe.w_bits));
  if (recipe.embed_bits != 8 || (recipe.classifier_bits != 4 && recipe.classifier_bits != 8))
    throw Error("synthetic models have an 8-bit embedding and a 4- or 8-bit classifier, not " +
                std::to_string(recipe.embed_bits) + " and " + std::to_string(recipe.classifier_bits));
  if (c.tied_embeddings && recipe.classifier_bits != recipe.embed_bits)
    throw Error("a tied classifier is the embedding: its bits cannot differ");
  const int D = c.dim, I = c.hidden_dim, KV = c.kv_dim(), V = c.vocab_size, hd = c.head_dim();
  RotorFileWriter out(c, recipe, tokenizer_bytes, path);
  RandomPackedMatrices random_matrix(recipe.seed);
  const int total = c.n_layers + 2;
  int done = 0;

  // As `rotor quantize` lays a model out: 8-bit per-channel embedding and classifier (or a 4-bit
  // classifier in the layers' groups) whose input stays at 8 bits (float with float
  // activations); layer inputs quantized per row, o_proj's per head.
  const WeightQuantSpec head_spec = head_quant_spec(8, recipe.group);
  const WeightQuantSpec classifier_spec = head_quant_spec(recipe.classifier_bits, recipe.group);
  auto add = [&](const std::string& name, int rows, int cols, const WeightQuantSpec& spec,
                 int act_bits) {
    const QuantizedMatrix m = random_matrix(rows, cols, spec);
    const int segment = spec.act_segment > 0 ? spec.act_segment : m.cols_padded;
    out.add_packed(name, m, {act_bits, segment, 0, 1.0f, 1.0f});
  };
  const int head_bits = recipe.a_bits >= 16 ? 16 : 8;
  add("tok_embeddings", V, D, head_spec, head_bits);
  progress(++done, total);

  // The online steps (see the header). Any orthogonal block costs the same as a learned one:
  // randomized Hadamards stand in for them.
  const std::string& rotation = recipe.rotation;
  if (rotation != "none" && rotation != "hadamard" && rotation != "psot" && rotation != "psot-layer")
    throw Error("unknown rotation '" + rotation + "' (none, hadamard, psot, psot-layer)");
  const bool rotated = rotation != "none";
  auto hadamard = [&](int n, uint64_t salt) {
    HadamardSpec h;
    h.n = n;
    h.seed = recipe.seed ^ salt;
    h.h_m = load_hadamard_matrix(hadamard_dir, HadamardTransform::factorize(n).m);
    return h;
  };
  if (rotated) {
    if (recipe.kv_k_group == 0) out.add_online_hadamard("qk_hadamard", hadamard(hd, 0x5233u));
    out.add_online_hadamard("down_hadamard", hadamard(I, 0x5234u));
  }
  const int resid_blocks = rotation == "psot-layer" ? psot_blocks(D) : 0;
  std::vector<float> resid;
  if (resid_blocks > 0) {
    out.set_resid_blocks(resid_blocks);
    const int n = D / resid_blocks;
    const HadamardSpec h = hadamard(n, 0x100);
    std::vector<float> block(static_cast<size_t>(n) * n, 0.0f);
    for (int i = 0; i < n; ++i) block[static_cast<size_t>(i) * n + i] = 1.0f;
    HadamardTransform(n, h.h_m, h.seed).apply_rows(block.data(), n, n);
    for (int b = 0; b < resid_blocks; ++b) resid.insert(resid.end(), block.begin(), block.end());
  }
  std::vector<float> down_scale(I);
  std::uniform_real_distribution<float> around_one(0.5f, 2.0f);
  std::mt19937 scale_rng(static_cast<uint32_t>(recipe.seed));

  const std::vector<float> norm(D, 1.0f);
  const WeightQuantSpec spec{recipe.w_bits, recipe.group, recipe.w_sym, 0};
  WeightQuantSpec o_spec = spec;
  o_spec.act_segment = hd;
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    out.add_f32(p + "attn_norm", norm, {D});
    add(p + "wq", D, D, spec, recipe.a_bits);
    add(p + "wk", KV, D, spec, recipe.a_bits);
    add(p + "wv", KV, D, spec, recipe.a_bits);
    add(p + "wo", D, D, o_spec, recipe.a_bits);
    out.add_f32(p + "ffn_norm", norm, {D});
    add(p + "w_gate", I, D, spec, recipe.a_bits);
    add(p + "w_up", I, D, spec, recipe.a_bits);
    add(p + "w_down", D, I, spec, recipe.a_bits);
    if (rotated && recipe.bdq) {
      for (float& s : down_scale) s = around_one(scale_rng);
      out.add_f32(p + "down_scale", down_scale, {I});
    }
    if (resid_blocks > 0) {
      const int64_t b = resid_blocks, n = D / resid_blocks;
      out.add_f16(p + "resid_attn", resid, {b, n, n});  // as rotor quantize writes them
      out.add_f16(p + "resid_mlp", resid, {b, n, n});
    }
    progress(++done, total);
  }
  out.add_f32("final_norm", norm, {D});
  if (!c.tied_embeddings) add("classifier", V, D, classifier_spec, head_bits);
  progress(++done, total);
  return out.finish();
}

}  // namespace rotor
