// Compact rotor files (docs/FORMAT.md). Everything is validated before use — header,
// directory, section bounds and checksums, manifest, every tensor's bounds and size — and
// the weights are then used in place from the mapping.
#include <algorithm>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/format/manifest.h"
#include "engine/format/rotor_format.h"
#include "engine/import/dtype.h"
#include "engine/import/load_model.h"
#include "engine/kernels/kernels.h"
#include "engine/quantized_linear.h"
#include "engine/threads.h"

namespace rotor {

namespace fmt = rotor::format;
using nlohmann::json;

namespace {

struct Sections {
  uint32_t version = 0;
  const uint8_t* manifest = nullptr;
  size_t manifest_size = 0;
  const uint8_t* tokenizer = nullptr;
  size_t tokenizer_size = 0;
  const uint8_t* data = nullptr;
  size_t data_size = 0;
};

// The checksums of n ≤ kChecksumWays byte ranges of `size` bytes each: their whole stripes side
// by side through the kernels' checksum_lanes, each one's tail finished on its own.
void range_checksums(const uint8_t* const* starts, int n, size_t size, uint64_t* out) {
  uint64_t lanes[4 * kChecksumWays];
  for (int c = 0; c < n; ++c) std::copy(fmt::kChecksumSeed, fmt::kChecksumSeed + 4, lanes + 4 * c);
  const size_t stripes = size / 32 * 32;
  kernels().checksum_lanes(starts, n, stripes, lanes);
  for (int c = 0; c < n; ++c) {
    fmt::Checksum rest(lanes + 4 * c, stripes);
    rest.update(starts[c] + stripes, size - stripes);
    out[c] = rest.digest();
  }
}

// The checksums of chunks [c0, c1) of a section: the whole 16 MiB chunks together, the section's
// shorter last chunk on its own.
void chunk_checksums(const uint8_t* base, size_t size, size_t c0, size_t c1, uint64_t* out) {
  const size_t whole = std::min(c1, size / fmt::kChecksumChunk);  // chunks before it are whole
  const int n = static_cast<int>(std::max(whole, c0) - c0);
  const uint8_t* starts[kChecksumWays];
  for (int c = 0; c < n; ++c) starts[c] = base + (c0 + c) * fmt::kChecksumChunk;
  range_checksums(starts, n, fmt::kChecksumChunk, out);
  if (c0 + n == c1) return;
  const uint8_t* last = base + (c1 - 1) * fmt::kChecksumChunk;
  range_checksums(&last, 1, size - (c1 - 1) * fmt::kChecksumChunk, out + n);
}

// A section's checksum as the file's version defines it. From version 2 on, the pool checksums
// groups of chunks side by side: the tensor data is most of what loading a model costs.
uint64_t verified_checksum(const uint8_t* base, size_t size, uint32_t version) {
  if (version == 1) return fmt::checksum(base, size);
  const size_t n = fmt::checksum_chunks(size);
  std::vector<uint64_t> chunks(n);
  const int groups = static_cast<int>((n + kChecksumWays - 1) / kChecksumWays);
  thread_pool().parallel_for(groups, [&](int g, int) {
    const size_t c0 = static_cast<size_t>(g) * kChecksumWays;
    chunk_checksums(base, size, c0, std::min(n, c0 + kChecksumWays), chunks.data() + c0);
  });
  return fmt::combine_chunk_checksums(chunks.data(), chunks.size());
}

Sections read_sections(const MappedFile& f) {
  const std::string& p = f.path();
  if (f.size() < sizeof(fmt::FileHeader))
    throw Error(p + ": truncated rotor file (" + std::to_string(f.size()) + " bytes, no header)");
  fmt::FileHeader h;
  std::memcpy(&h, f.data(), sizeof h);
  if (std::memcmp(h.magic, fmt::kMagic, sizeof h.magic) != 0) throw Error(p + ": bad magic");
  if (fmt::checksum(&h, offsetof(fmt::FileHeader, header_checksum)) != h.header_checksum)
    throw Error(p + ": header checksum mismatch (corrupted file)");
  if (h.version < fmt::kOldestVersion || h.version > fmt::kVersion)
    throw Error(p + ": unsupported rotor file version " + std::to_string(h.version) +
                " (this build reads versions " + std::to_string(fmt::kOldestVersion) + " to " +
                std::to_string(fmt::kVersion) + ")");
  if (h.file_size != f.size())
    throw Error(p + ": " + (f.size() < h.file_size ? "truncated" : "oversized") +
                " rotor file: " + std::to_string(f.size()) + " bytes, the header says " +
                std::to_string(h.file_size));
  if (h.section_count == 0 || h.section_count > 64 || h.directory_offset > f.size() ||
      h.section_count * sizeof(fmt::SectionEntry) > f.size() - h.directory_offset)
    throw Error(p + ": section directory lies outside the file");
  std::vector<fmt::SectionEntry> dir(h.section_count);
  std::memcpy(dir.data(), f.data() + h.directory_offset, dir.size() * sizeof(fmt::SectionEntry));
  if (fmt::checksum(dir.data(), dir.size() * sizeof(fmt::SectionEntry)) != h.directory_checksum)
    throw Error(p + ": section directory checksum mismatch (corrupted file)");

  Sections s;
  s.version = h.version;
  for (const fmt::SectionEntry& e : dir) {
    const std::string name = "section " + std::to_string(e.kind);
    if (e.offset % fmt::kAlign != 0 || e.offset > f.size() || e.size > f.size() - e.offset)
      throw Error(p + ": " + name + " lies outside the file");
    const uint8_t* base = f.data() + e.offset;
    if (verified_checksum(base, e.size, h.version) != e.checksum)
      throw Error(p + ": " + name + " checksum mismatch (corrupted file)");
    switch (e.kind) {
      case fmt::kManifest: s.manifest = base; s.manifest_size = e.size; break;
      case fmt::kTokenizer: s.tokenizer = base; s.tokenizer_size = e.size; break;
      case fmt::kTensorData: s.data = base; s.data_size = e.size; break;
      default:
        if (e.flags & fmt::kSectionRequired)
          throw Error(p + ": " + name + " is required but unknown to this build");
    }
  }
  if (!s.manifest || !s.tokenizer || !s.data)
    throw Error(p + ": a required section (manifest, tokenizer, tensor data) is missing");
  return s;
}

// Looks up tensors by name and checks each byte range against the data section.
class TensorTable {
 public:
  TensorTable(const json& tensors, const Sections& s, std::string path)
      : s_(s), path_(std::move(path)) {
    if (!tensors.is_array()) throw Error(path_ + ": manifest has no tensor table");
    for (const json& t : tensors) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string())
        throw Error(path_ + ": malformed tensor entry in the manifest");
      by_name_[t["name"].get<std::string>()] = &t;
    }
  }

  const json& entry(const std::string& name, const char* type) const {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) throw Error(path_ + ": missing tensor '" + name + "'");
    if (!it->second->contains("type") || (*it->second)["type"] != type)
      throw Error(path_ + ": tensor '" + name + "' is not of type " + type);
    return *it->second;
  }

  // The bytes of a {offset, bytes} range, which must hold exactly `expected` bytes.
  const uint8_t* range(const json& r, uint64_t expected, const std::string& what) const {
    uint64_t offset, bytes;
    try {
      offset = r.at("offset").get<uint64_t>();
      bytes = r.at("bytes").get<uint64_t>();
    } catch (const json::exception&) {
      throw Error(path_ + ": " + what + ": malformed offset/bytes");
    }
    if (offset % fmt::kAlign != 0 || offset > s_.data_size || bytes > s_.data_size - offset)
      throw Error(path_ + ": " + what + ": offset or size outside the tensor data");
    if (bytes != expected)
      throw Error(path_ + ": " + what + ": holds " + std::to_string(bytes) +
                  " bytes, its shape needs " + std::to_string(expected));
    return s_.data + offset;
  }

  // A float tensor of the given shape in place: f32 or f16.
  struct FloatTensor {
    bool f16;
    const uint8_t* bytes;
    uint64_t count;
  };
  FloatTensor float_tensor(const std::string& name, const std::vector<int64_t>& shape) const {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) throw Error(path_ + ": missing tensor '" + name + "'");
    const json& t = *it->second;
    const std::string type = t.value("type", "");
    if (type != "f32" && type != "f16")
      throw Error(path_ + ": tensor '" + name + "' has unsupported type '" + type + "'");
    if (!t.contains("shape") || t["shape"] != json(shape))
      throw Error(path_ + ": tensor '" + name + "' has the wrong shape");
    uint64_t count = 1;
    for (int64_t d : shape) count *= static_cast<uint64_t>(d);
    const bool f16 = type == "f16";
    return {f16, range(t, count * (f16 ? 2 : 4), "tensor '" + name + "'"), count};
  }

  // A float tensor of the given shape (f32 in place, f16 converted into model storage).
  const float* floats(Model& model, const std::string& name, std::vector<int64_t> shape) const {
    const FloatTensor t = float_tensor(name, shape);
    if (!t.f16) return reinterpret_cast<const float*>(t.bytes);
    std::vector<float> out(t.count);
    for (uint64_t i = 0; i < t.count; ++i) {
      uint16_t h;
      std::memcpy(&h, t.bytes + 2 * i, 2);
      out[i] = f16_to_f32(h);
    }
    return model.keep(std::move(out));
  }

  // psot-layer's residual blocks, used in place in either float type.
  ResidualBlocks residual_blocks(const std::string& name, std::vector<int64_t> shape) const {
    const FloatTensor t = float_tensor(name, shape);
    ResidualBlocks m;
    if (t.f16)
      m.f16 = reinterpret_cast<const uint16_t*>(t.bytes);
    else
      m.f32 = reinterpret_cast<const float*>(t.bytes);
    return m;
  }

  // A packed matrix of shape [rows, cols] and its activation settings.
  PackedMatrix packed(const std::string& name, int rows, int cols, ActQuantParams* act) const {
    const json& t = entry(name, "packed");
    const std::string what = "tensor '" + name + "'";
    PackedMatrix m;
    try {
      m.rows = t.at("rows").get<int>();
      m.cols = t.at("cols").get<int>();
      m.cols_padded = t.at("cols_padded").get<int>();
      m.bits = t.at("bits").get<int>();
      m.group = t.at("group").get<int>();
      m.block = t.at("block").get<int>();
      const json& a = t.at("act");
      act->bits = a.at("bits").get<int>();
      act->segment = a.at("segment").get<int>();
      act->clip_min = a.at("clip_min").get<float>();
      act->clip_max = a.at("clip_max").get<float>();
    } catch (const json::exception&) {
      throw Error(path_ + ": " + what + ": malformed packed-matrix entry");
    }
    if (m.rows != rows || m.cols != cols)
      throw Error(path_ + ": " + what + " has shape [" + std::to_string(m.rows) + ", " +
                  std::to_string(m.cols) + "], expected [" + std::to_string(rows) + ", " +
                  std::to_string(cols) + "]");
    const bool ok = (m.bits == 4 || m.bits == 8) && m.cols_padded >= m.cols &&
                    m.cols_padded % kChunk == 0 && m.cols_padded - m.cols < 1 << 16 &&
                    m.group > 0 && m.cols_padded % m.group == 0 && m.block > 0 &&
                    m.group % m.block == 0 && (act->bits == 4 || act->bits == 8 || act->bits == 16) &&
                    act->segment > 0 && m.cols_padded % act->segment == 0 &&
                    act->segment % m.block == 0 && act->clip_min > 0 && act->clip_min <= 1 &&
                    act->clip_max > 0 && act->clip_max <= 1;
    if (!ok) throw Error(path_ + ": " + what + ": inconsistent quantization parameters");
    read_segment_clips(t.at("act"), m.cols_padded / act->segment, what, act);
    const uint64_t r = m.rows;
    const json& parts = t.at("parts");
    try {
      m.codes = range(parts.at("codes"), r * m.row_bytes(), what + " codes");
      m.scales = reinterpret_cast<const float*>(
          range(parts.at("scales"), r * m.groups() * 4, what + " scales"));
      m.zeros = reinterpret_cast<const int32_t*>(
          range(parts.at("zeros"), r * m.groups() * 4, what + " zeros"));
      m.sums = reinterpret_cast<const int32_t*>(
          range(parts.at("sums"), r * m.blocks() * 4, what + " sums"));
    } catch (const json::exception&) {
      throw Error(path_ + ": " + what + ": missing parts");
    }
    // Zero points are codes (the quantizer clamps them so): the linear epilogue's 32-bit
    // integer arithmetic relies on it.
    const int32_t zmin = -(1 << (m.bits - 1)), zmax = (1 << (m.bits - 1)) - 1;
    for (uint64_t i = 0; i < r * m.groups(); ++i)
      if (m.zeros[i] < zmin || m.zeros[i] > zmax)
        throw Error(path_ + ": " + what + ": zero point " + std::to_string(m.zeros[i]) +
                    " is not a " + std::to_string(m.bits) + "-bit code");
    return m;
  }

  // The optional per-segment clips of an "act" object: [[clip_min, clip_max], ...], one pair
  // per segment, each factor in (0, 1].
  void read_segment_clips(const json& a, int segments, const std::string& what,
                          ActQuantParams* act) const {
    if (!a.contains("segment_clips")) return;
    const std::string bad = path_ + ": " + what + ": act.segment_clips ";
    const json& clips = a["segment_clips"];
    if (!clips.is_array() || clips.size() != static_cast<size_t>(segments))
      throw Error(bad + "must be an array of " + std::to_string(segments) + " [min, max] pairs");
    for (const json& c : clips) {
      if (!c.is_array() || c.size() != 2 || !c[0].is_number() || !c[1].is_number())
        throw Error(bad + "holds an entry that is not a [min, max] pair of numbers");
      const ActQuantParams::Clip clip{c[0].get<float>(), c[1].get<float>()};
      if (!(clip.min > 0 && clip.min <= 1 && clip.max > 0 && clip.max <= 1))
        throw Error(bad + "holds a factor outside (0, 1]");
      act->segment_clips.push_back(clip);
    }
  }

  bool has(const std::string& name) const { return by_name_.count(name) != 0; }

  bool is_packed(const std::string& name) const {
    auto it = by_name_.find(name);
    return it != by_name_.end() && it->second->value("type", "") == "packed";
  }

 private:
  const Sections& s_;
  std::string path_;
  std::map<std::string, const json*> by_name_;
};

// The online rotations (manifest "online"): Hadamard transforms and the residual block count.
void read_online(const json& manifest, const TensorTable& tt, Model& model) {
  const std::string& path = model.path;
  if (!manifest.contains("online") || !manifest["online"].is_object())
    throw Error(path + ": manifest lacks the 'online' object");
  const json& on = manifest["online"];
  const ModelConfig& c = model.config;
  auto hadamard = [&](const char* name, int expected_n) -> std::unique_ptr<HadamardTransform> {
    if (!on.contains(name)) return nullptr;
    int n, m;
    uint64_t seed;
    try {
      n = on[name].at("n").get<int>();
      m = on[name].at("m").get<int>();
      seed = on[name].at("seed").get<uint64_t>();
    } catch (const json::exception&) {
      throw Error(path + ": online transform '" + name + "' is malformed");
    }
    if (n != expected_n)
      throw Error(path + ": online transform '" + std::string(name) + "' has size " +
                  std::to_string(n) + ", the model needs " + std::to_string(expected_n));
    std::vector<int8_t> h;
    if (m > 1) {
      const float* f = tt.floats(model, "online." + std::string(name) + ".factor", {m, m});
      for (int i = 0; i < m * m; ++i) h.push_back(f[i] > 0 ? 1 : -1);
    }
    return std::make_unique<HadamardTransform>(n, h, seed);  // validates n, m and the factor
  };
  model.online.qk = hadamard("qk_hadamard", c.head_dim());
  model.online.down = hadamard("down_hadamard", c.hidden_dim);
  const int b = on.value("resid_blocks", 0);
  if (b < 1 || c.dim % b != 0)
    throw Error(path + ": online 'resid_blocks' must divide the model width");
  model.online.resid_blocks = b;
}

}  // namespace

std::unique_ptr<Model> import_rotor(const std::string& path, FileAccess access) {
  auto model = std::make_unique<Model>();
  model->mappings.push_back(std::make_unique<MappedFile>(path, access));
  const MappedFile& f = *model->mappings.back();
  const Sections s = read_sections(f);

  json manifest;
  try {
    manifest = json::parse(s.manifest, s.manifest + s.manifest_size);
  } catch (const json::exception&) {
    throw Error(path + ": manifest is not valid JSON");
  }
  if (!manifest.is_object() || !manifest.contains("config") || !manifest.contains("recipe") ||
      !manifest.contains("tensors"))
    throw Error(path + ": manifest lacks config, recipe or tensors");
  model->config = fmt::config_from_json(manifest["config"], path);
  model->recipe = fmt::recipe_from_json(manifest["recipe"], path);
  model->quantized = true;
  model->path = path;
  model->format = "rotor";
  model->format_version = s.version;
  model->file_bytes = f.size();
  model->tokenizer_proto.assign(reinterpret_cast<const char*>(s.tokenizer), s.tokenizer_size);
  model->tokenizer_path = path + " (embedded)";
  if (manifest.contains("chat_template")) {
    if (!manifest["chat_template"].is_string())
      throw Error(path + ": manifest field 'chat_template' is not a string");
    model->chat_template = manifest["chat_template"].get<std::string>();
  }
  const ModelConfig& c = model->config;
  const int D = c.dim, I = c.hidden_dim, KV = c.kv_dim(), V = c.vocab_size;

  const TensorTable tt(manifest["tensors"], s, path);
  // Packed integer weights, or floats (16/32-bit recipes, kept for comparison).
  auto linear = [&](const std::string& name, int rows, int cols) -> std::unique_ptr<Linear> {
    if (!tt.is_packed(name))
      return std::make_unique<LinearF32>(tt.floats(*model, name, {rows, cols}), rows, cols);
    ActQuantParams act;
    PackedMatrix m = tt.packed(name, rows, cols, &act);
    return std::make_unique<QuantizedLinear>(m, act);
  };
  read_online(manifest, tt, *model);

  // Embedding: packed rows (the tied classifier reads the same matrix) or floats.
  if (tt.is_packed("tok_embeddings")) {
    ActQuantParams act;
    PackedMatrix m = tt.packed("tok_embeddings", V, D, &act);
    model->embedding = std::make_unique<EmbeddingPacked>(m);
    if (c.tied_embeddings) model->classifier = std::make_unique<QuantizedLinear>(m, act);
  } else {
    const float* e = tt.floats(*model, "tok_embeddings", {V, D});
    model->embedding = std::make_unique<EmbeddingF32>(e, D);
    if (c.tied_embeddings) model->classifier = std::make_unique<LinearF32>(e, V, D);
  }
  model->layers.resize(c.n_layers);
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    LayerWeights& l = model->layers[i];
    l.attn_norm = tt.floats(*model, p + "attn_norm", {D});
    l.wq = linear(p + "wq", D, D);
    l.wk = linear(p + "wk", KV, D);
    l.wv = linear(p + "wv", KV, D);
    l.wo = linear(p + "wo", D, D);
    l.ffn_norm = tt.floats(*model, p + "ffn_norm", {D});
    l.w_gate = linear(p + "w_gate", I, D);
    l.w_up = linear(p + "w_up", I, D);
    l.w_down = linear(p + "w_down", D, I);
    if (tt.has(p + "down_scale")) l.down_scale = tt.floats(*model, p + "down_scale", {I});
    const int b = model->online.resid_blocks, n = D / b;
    if (tt.has(p + "resid_attn")) l.resid_attn = tt.residual_blocks(p + "resid_attn", {b, n, n});
    if (tt.has(p + "resid_mlp")) l.resid_mlp = tt.residual_blocks(p + "resid_mlp", {b, n, n});
  }
  model->final_norm = tt.floats(*model, "final_norm", {D});
  if (!c.tied_embeddings) {
    if (tt.is_packed("classifier")) {
      model->classifier = linear("classifier", V, D);
    } else {
      model->classifier = std::make_unique<LinearF32>(tt.floats(*model, "classifier", {V, D}), V, D);
    }
  }
  model->dtype = "w" + std::to_string(model->recipe.w_bits) + "a" +
                 std::to_string(model->recipe.a_bits) + "kv" +
                 std::to_string(model->recipe.kv_bits);
  return model;
}

}  // namespace rotor
