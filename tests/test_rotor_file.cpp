// The compact file: what the quantizer writes loads back with its recipe, and a file that is
// damaged anywhere — a flipped byte in any section, a cut at any point, a bad version, an
// offset outside the data — is refused with an Error (exit code 2 through the CLI).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/format/manifest.h"
#include "engine/format/rotor_format.h"
#include "engine/import/load_model.h"
#include "engine/kernels/kernels.h"
#include "engine/quantized_linear.h"
#include "engine/session.h"
#include "quant/quantize_model.h"
#include "tests/helpers.h"
#include "tokenizer/tokenizer.h"
#include "tools/template_options.h"

using namespace rotor;
using namespace rotor::test;
namespace fmt = rotor::format;

namespace {

// A small W4A8KV8 RTN file of stories260K, written once for all cases here.
const std::string& quantized_bytes() {
  static const std::string bytes = [] {
    auto src = load_model(llama2c_path("stories260K"));
    Tokenizer tok(src->tokenizer_proto, src->tokenizer_path);
    Recipe r;
    r.weights = "rtn";
    TempDir tmp;
    QuantizeInputs in;
    in.chat_template = "chatml";
    quantize_model(*src, tok, r, in, tmp.file("m.rotor"), [](const QuantizeProgress&) {});
    return read_file(tmp.file("m.rotor"));
  }();
  return bytes;
}

struct Parsed {
  fmt::FileHeader header;
  std::vector<fmt::SectionEntry> dir;
};
Parsed parse(const std::string& bytes) {
  Parsed p;
  std::memcpy(&p.header, bytes.data(), sizeof p.header);
  p.dir.resize(p.header.section_count);
  std::memcpy(p.dir.data(), bytes.data() + p.header.directory_offset,
              p.dir.size() * sizeof(fmt::SectionEntry));
  return p;
}

// Rewrites header and directory checksums after an edit, so only the edit itself is wrong
// (sections as p.header.version checksums them).
void reseal(std::string& bytes, Parsed& p) {
  for (auto& e : p.dir)
    e.checksum = p.header.version == 1 ? fmt::checksum(bytes.data() + e.offset, e.size)
                                       : fmt::section_checksum(bytes.data() + e.offset, e.size);
  std::memcpy(&bytes[p.header.directory_offset], p.dir.data(), p.dir.size() * sizeof(fmt::SectionEntry));
  p.header.directory_checksum = fmt::checksum(p.dir.data(), p.dir.size() * sizeof(fmt::SectionEntry));
  p.header.header_checksum = fmt::checksum(&p.header, offsetof(fmt::FileHeader, header_checksum));
  std::memcpy(&bytes[0], &p.header, sizeof p.header);
}

std::string load_error(const std::string& bytes, FileAccess access = FileAccess::kMap) {
  TempDir tmp;
  write_file(tmp.file("m.rotor"), bytes);
  try {
    LoadOptions options;
    options.access = access;
    load_model(tmp.file("m.rotor"), options);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// stories260K in fp32 and its logits over a short prompt: what the W8A16 files below (W8 per
// channel, rounded to nearest; float activations and cache) are compared with.
struct FloatReference {
  std::unique_ptr<Model> src = load_model(llama2c_path("stories260K"));
  Tokenizer tok{src->tokenizer_proto, src->tokenizer_path};
  std::vector<int> prompt = {1, 403, 407, 261, 378, 432, 383, 286};
  std::vector<float> logits;
  FloatReference() { Session(*src, 64).prefill(prompt, &logits); }

  std::unique_ptr<Model> w8a16(int embed_bits, int classifier_bits, int group, const std::string& path) const {
    Recipe r;
    r.weights = "rtn";
    r.w_bits = 8;
    r.group = group;
    r.a_bits = 16;
    r.kv_bits = 16;
    r.embed_bits = embed_bits;
    r.classifier_bits = classifier_bits;
    quantize_model(*src, tok, r, QuantizeInputs{}, path, [](const QuantizeProgress&) {});
    return load_model(path);
  }
  float max_logit_diff(const Model& m) const {
    std::vector<float> got;
    Session(m, 64).prefill(prompt, &got);
    REQUIRE(got.size() == logits.size());
    float diff = 0.0f;
    for (size_t i = 0; i < got.size(); ++i) diff = std::max(diff, std::fabs(got[i] - logits[i]));
    return diff;
  }
};

}  // namespace

TEST_CASE("rotor file: round trip keeps config, recipe and tokenizer") {
  TempDir tmp;
  write_file(tmp.file("m.rotor"), quantized_bytes());
  auto m = load_model(tmp.file("m.rotor"));
  CHECK(m->format == "rotor");
  CHECK(m->quantized);
  CHECK(m->config.dim == 64);
  CHECK(m->config.n_kv_heads == 4);
  CHECK(m->recipe.w_bits == 4);
  CHECK(m->recipe.a_bits == 8);
  CHECK(m->recipe.kv_bits == 8);
  CHECK(m->recipe.weights == "rtn");
  CHECK(m->tokenizer_proto == read_file(shared_dir() + "/models/stories260K/tokenizer.model"));
  CHECK(m->layers[0].wq->type_name() == "w4a8");
  CHECK(m->chat_template == "chatml");
}

TEST_CASE("rotor file: read into memory (--no-mmap), it runs as mapped and is checked alike") {
  TempDir tmp;
  write_file(tmp.file("m.rotor"), quantized_bytes());
  LoadOptions options;
  options.access = FileAccess::kRead;
  auto mapped = load_model(tmp.file("m.rotor")), read = load_model(tmp.file("m.rotor"), options);
  REQUIRE(read->mappings.size() == 1);
  CHECK(read->mappings[0]->access() == FileAccess::kRead);
  CHECK(mapped->mappings[0]->access() == FileAccess::kMap);
  Session sm(*mapped), sr(*read);
  const float* lm = sm.prefill({1, 400, 32});
  const float* lr = sr.prefill({1, 400, 32});
  CHECK(std::equal(lm, lm + mapped->config.vocab_size, lr));
  const float* dm = sm.decode(9);
  const float* dr = sr.decode(9);
  CHECK(std::equal(dm, dm + mapped->config.vocab_size, dr));

  std::string bad = quantized_bytes();
  const Parsed p = parse(bad);
  bad[p.dir.back().offset + p.dir.back().size / 2] ^= 0x10;
  CHECK(load_error(bad, FileAccess::kRead).find("checksum mismatch") != std::string::npos);
  const std::string& good = quantized_bytes();
  CHECK(load_error(good.substr(0, good.size() / 2), FileAccess::kRead).find("truncated") !=
        std::string::npos);
}

TEST_CASE("rotor file: version 1 files (one checksum per whole section) still load") {
  std::string v1 = quantized_bytes();
  Parsed p = parse(v1);
  REQUIRE(p.header.version == 2);
  p.header.version = 1;
  reseal(v1, p);
  TempDir tmp;
  write_file(tmp.file("v1.rotor"), v1);
  write_file(tmp.file("v2.rotor"), quantized_bytes());
  auto a = load_model(tmp.file("v1.rotor")), b = load_model(tmp.file("v2.rotor"));
  Session sa(*a), sb(*b);
  const float* la = sa.prefill({1, 400, 32});
  const float* lb = sb.prefill({1, 400, 32});
  CHECK(std::equal(la, la + a->config.vocab_size, lb));
  // Its sections are verified as version 1 defines them: a flipped byte is still refused.
  v1[p.dir.back().offset + p.dir.back().size / 2] ^= 0x10;
  CHECK(load_error(v1).find("checksum mismatch") != std::string::npos);
}

TEST_CASE("rotor file: a section of several checksum chunks is verified chunk by chunk") {
  // The file with an optional section appended (readers verify sections they skip), the
  // directory moved behind it: 1.5 chunks more than the loader checksums side by side, so a
  // group of whole chunks and one ending in the section's shorter last chunk.
  std::string bytes = quantized_bytes();
  Parsed p = parse(bytes);
  bytes.resize(fmt::align_up(bytes.size()));
  fmt::SectionEntry big{99, 0, bytes.size(), fmt::kChecksumChunk * (2 * kChecksumWays + 3) / 2, 0};
  for (size_t i = 0; i < big.size; ++i) bytes.push_back(static_cast<char>(i * 2654435761u >> 13));
  bytes.resize(fmt::align_up(bytes.size()));
  p.dir.push_back(big);
  p.header.section_count = static_cast<uint32_t>(p.dir.size());
  p.header.directory_offset = bytes.size();
  bytes.resize(bytes.size() + p.dir.size() * sizeof(fmt::SectionEntry));
  p.header.file_size = bytes.size();
  reseal(bytes, p);
  CHECK(load_error(bytes) == "");
  for (size_t at : {size_t{0}, fmt::kChecksumChunk + 5, fmt::kChecksumChunk * kChecksumWays + 3,
                    big.size - 1}) {
    CAPTURE(at);
    std::string bad = bytes;
    bad[big.offset + at] ^= 0x01;
    CHECK(load_error(bad).find("section 99 checksum mismatch") != std::string::npos);
  }
}

TEST_CASE("rotor file: the section checksum is its chunks' checksums, however the bytes arrive") {
  const size_t chunk = fmt::kChecksumChunk;
  std::string bytes(chunk * 2 + 1000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 + 7);
  for (size_t size : {size_t{0}, size_t{1}, size_t{100}, chunk - 1, chunk, chunk + 1, bytes.size()})
    for (size_t piece : {size_t{1000}, chunk / 3 + 7, chunk}) {
      CAPTURE(size);
      CAPTURE(piece);
      std::vector<uint64_t> chunks;
      for (size_t at = 0; at < size; at += chunk)
        chunks.push_back(fmt::checksum(bytes.data() + at, std::min(chunk, size - at)));
      const uint64_t want = fmt::combine_chunk_checksums(chunks.data(), chunks.size());
      CHECK(fmt::section_checksum(bytes.data(), size) == want);
      fmt::SectionChecksum c;
      for (size_t at = 0; at < size; at += piece) c.update(bytes.data() + at, std::min(piece, size - at));
      CHECK(c.digest() == want);
    }
  // Different chunks, different checksums.
  std::string other = bytes;
  other[chunk + 3] ^= 1;
  CHECK(fmt::section_checksum(other.data(), other.size()) !=
        fmt::section_checksum(bytes.data(), bytes.size()));
}

TEST_CASE("rotor file: the recipe's tuning fields round-trip; files written before them read as untuned") {
  Recipe r;
  r.tune_epochs = 4;
  r.tune_rounding = true;
  nlohmann::json j = format::recipe_to_json(r);
  Recipe back = format::recipe_from_json(j, "m.rotor");
  CHECK(back.tune_epochs == 4);
  CHECK(back.tune_rounding);
  j.erase("tune_rounding");  // written by the scale-only tuning
  back = format::recipe_from_json(j, "m.rotor");
  CHECK(back.tune_epochs == 4);
  CHECK_FALSE(back.tune_rounding);
  j.erase("tune_epochs");  // written before any tuning
  back = format::recipe_from_json(j, "m.rotor");
  CHECK(back.tune_epochs == 0);
  CHECK_FALSE(back.tune_rounding);
  j["tune_rounding"] = "yes";
  CHECK_THROWS_AS(format::recipe_from_json(j, "m.rotor"), Error);
}

TEST_CASE("rotor file: the classifier's bits round-trip; files written before them read as the embedding's") {
  Recipe r;
  r.embed_bits = 16;
  r.classifier_bits = 4;
  nlohmann::json j = format::recipe_to_json(r);
  CHECK(format::recipe_from_json(j, "m.rotor").classifier_bits == 4);
  j.erase("classifier_bits");
  CHECK(format::recipe_from_json(j, "m.rotor").classifier_bits == 16);
  j["classifier_bits"] = 3;
  CHECK_THROWS_AS(format::recipe_from_json(j, "m.rotor"), Error);
}

TEST_CASE("rotor file: float embeddings (16 and 32 bits) and float activations round-trip") {
  const FloatReference ref;
  for (int embed_bits : {16, 32}) {
    CAPTURE(embed_bits);
    TempDir tmp;
    auto m = ref.w8a16(embed_bits, embed_bits, 0, tmp.file("m.rotor"));
    CHECK(m->recipe.embed_bits == embed_bits);
    CHECK(m->chat_template.empty());
    CHECK(m->classifier->type_name() == "f32");
    // W8 per channel with float activations: one step is 1/255 of a row's range, a coarser
    // rounding than bf16's (which moves these logits by 0.12); measured 0.19 for both embedding
    // widths, so the embedding's storage is not what moves them. Bound: twice that.
    const float diff = ref.max_logit_diff(*m);
    MESSAGE("embed " << embed_bits << ", W8A16: max |logit diff| vs fp32 " << diff);
    CHECK(diff < 0.4f);
  }
}

TEST_CASE("rotor file: a 4-bit classifier (and embedding) round-trips in the weights' groups") {
  const FloatReference ref;
  TempDir tmp;
  for (int group : {0, 32}) {
    auto m8 = ref.w8a16(8, 8, group, tmp.file("e8.rotor"));
    CHECK(m8->config.tied_embeddings);  // stories260K's, kept without a rotation
    for (int embed_bits : {4, 8}) {
      CAPTURE(group);
      CAPTURE(embed_bits);
      auto m = ref.w8a16(embed_bits, 4, group, tmp.file("c4.rotor"));
      CHECK(m->recipe.embed_bits == embed_bits);
      CHECK(m->recipe.classifier_bits == 4);
      CHECK(m->config.tied_embeddings == (embed_bits == 4));  // untied when the bits differ
      CHECK(m->classifier->type_name() == "w4a16");
      CHECK((m->embedding->row_bytes() < m8->embedding->row_bytes()) == (embed_bits == 4));
      CHECK(m->weight_bytes_per_token() < m8->weight_bytes_per_token());
      // 4-bit rows rounded to nearest move these logits by 1.31-1.60 (the 4-bit embedding adds
      // 0.04-0.13); an 8-bit head: 0.19. Bound: twice the largest.
      const float diff = ref.max_logit_diff(*m);
      MESSAGE("embed " << embed_bits << ", classifier 4, group " << group
                       << ", W8A16: max |logit diff| vs fp32 " << diff);
      CHECK(diff < 3.2f);
    }
  }
}

TEST_CASE("rotor file: a flipped byte in any section is refused") {
  const std::string good = quantized_bytes();
  CHECK(load_error(good).empty());
  Parsed p = parse(good);
  std::vector<std::pair<std::string, size_t>> spots = {
      {"magic", 6}, {"version", 8}, {"reserved", 40}, {"header checksum", 60},
      {"directory", p.header.directory_offset + 3}};
  for (const auto& e : p.dir)
    for (size_t at : {size_t{0}, e.size / 2, e.size - 1})
      spots.push_back({"section " + std::to_string(e.kind), e.offset + at});
  for (const auto& [what, at] : spots) {
    CAPTURE(what);
    CAPTURE(at);
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    const std::string err = load_error(bad);
    CHECK(!err.empty());
    CHECK((err.find("checksum mismatch") != std::string::npos || err.find("bad magic") != std::string::npos));
  }
}

TEST_CASE("rotor file: truncated anywhere is refused") {
  const std::string good = quantized_bytes();
  for (size_t cut : {size_t{5}, size_t{40}, size_t{64}, size_t{100}, good.size() / 3,
                     good.size() / 2, good.size() - 64, good.size() - 1}) {
    CAPTURE(cut);
    const std::string err = load_error(good.substr(0, cut));
    CHECK(err.find("truncated") != std::string::npos);
  }
}

TEST_CASE("rotor file: unknown version, bad offsets and bad shapes name the problem") {
  const std::string good = quantized_bytes();
  {
    std::string bad = good;
    Parsed p = parse(bad);
    p.header.version = fmt::kVersion + 1;
    reseal(bad, p);
    CHECK(load_error(bad).find("unsupported rotor file version " + std::to_string(fmt::kVersion + 1)) !=
          std::string::npos);
    p.header.version = 0;
    reseal(bad, p);
    CHECK(load_error(bad).find("unsupported rotor file version 0") != std::string::npos);
  }
  // Edits to the manifest: the file is laid out again around the new manifest and resealed,
  // so the edit is the only thing wrong with it.
  auto edited = [&](const std::function<void(nlohmann::json&)>& change) {
    Parsed p = parse(good);
    std::vector<std::string> sections;
    for (const auto& e : p.dir) sections.push_back(good.substr(e.offset, e.size));
    REQUIRE(p.dir[0].kind == fmt::kManifest);
    auto j = nlohmann::json::parse(sections[0]);
    change(j);
    sections[0] = j.dump();
    std::string bad(p.dir[0].offset, '\0');
    for (size_t i = 0; i < sections.size(); ++i) {
      bad.resize(fmt::align_up(bad.size()), '\0');
      p.dir[i].offset = bad.size();
      p.dir[i].size = sections[i].size();
      bad += sections[i];
    }
    p.header.file_size = bad.size();
    reseal(bad, p);
    return bad;
  };
  auto edit_manifest = [&](const std::function<void(nlohmann::json&)>& change) {
    return load_error(edited(change));
  };
  auto tensor = [](nlohmann::json& j, const std::string& name) -> nlohmann::json& {
    for (auto& t : j["tensors"])
      if (t["name"] == name) return t;
    FAIL("no tensor " << name);
    return j;
  };
  CHECK(edit_manifest([&](nlohmann::json& j) {
          tensor(j, "layers.1.wk")["parts"]["codes"]["offset"] = 1ull << 40;
        }).find("outside the tensor data") != std::string::npos);
  CHECK(edit_manifest([&](nlohmann::json& j) {
          tensor(j, "layers.1.wk")["parts"]["scales"]["bytes"] = 4;
        }).find("holds 4 bytes, its shape needs 128") != std::string::npos);
  CHECK(edit_manifest([&](nlohmann::json& j) {
          tensor(j, "layers.1.wk")["parts"]["sums"]["offset"] = 65;
        }).find("outside the tensor data") != std::string::npos);  // misaligned
  CHECK(edit_manifest([&](nlohmann::json& j) { tensor(j, "layers.2.wv")["rows"] = 64; })
            .find("has shape [64, 64], expected [32, 64]") != std::string::npos);
  CHECK(edit_manifest([&](nlohmann::json& j) { tensor(j, "layers.0.w_up")["bits"] = 3; })
            .find("inconsistent quantization parameters") != std::string::npos);
  // Zero points read from the packed codes' bytes: far outside the 4-bit codes.
  CHECK(edit_manifest([&](nlohmann::json& j) {
          nlohmann::json& parts = tensor(j, "layers.1.wk")["parts"];
          parts["zeros"]["offset"] = parts["codes"]["offset"];
        }).find("'layers.1.wk': zero point") != std::string::npos);
  // Per-head clips of o_proj (8 heads): optional, one [min, max] pair per segment, in (0, 1].
  auto with_clips = [&](const nlohmann::json& clips) {
    return edited(
        [&](nlohmann::json& j) { tensor(j, "layers.3.wo")["act"]["segment_clips"] = clips; });
  };
  auto set_clips = [&](const nlohmann::json& clips) { return load_error(with_clips(clips)); };
  const nlohmann::json pair = nlohmann::json::array({0.9, 0.75});
  const nlohmann::json last = nlohmann::json::array({1, 1e-3});
  {
    TempDir tmp;
    write_file(tmp.file("m.rotor"),
               with_clips(nlohmann::json::array({pair, pair, pair, pair, pair, pair, pair, last})));
    auto m = load_model(tmp.file("m.rotor"));
    const auto* wo = dynamic_cast<const QuantizedLinear*>(m->layers[3].wo.get());
    REQUIRE(wo != nullptr);
    const std::vector<ActQuantParams::Clip>& clips = wo->activation().segment_clips;
    REQUIRE(clips.size() == 8);
    CHECK(clips[0].min == 0.9f);
    CHECK(clips[0].max == 0.75f);
    CHECK(clips[7].max == 1e-3f);
    const auto* other = dynamic_cast<const QuantizedLinear*>(m->layers[2].wo.get());
    REQUIRE(other != nullptr);
    CHECK(other->activation().segment_clips.empty());  // the shared pair, as before
    CliResult r = run_rotor({"info", tmp.file("m.rotor"), "--json"});
    REQUIRE(r.exit_code == 0);
    CHECK(nlohmann::json::parse(r.out)["o_proj_head_clip_layers"] == 1);
    r = run_rotor({"info", tmp.file("m.rotor")});
    CHECK(r.out.find("o_proj clipped per head in 1 of 5 layers") != std::string::npos);
  }
  const std::string count = "tensor 'layers.3.wo': act.segment_clips must be an array of 8";
  CHECK(set_clips(nlohmann::json::array({pair, pair})).find(count) != std::string::npos);
  CHECK(set_clips(0.9).find(count) != std::string::npos);
  for (const nlohmann::json& bad : {nlohmann::json::array({0.0, 0.5}),
                                    nlohmann::json::array({0.5, 1.5}),
                                    nlohmann::json::array({-1.0, 0.5})}) {
    CAPTURE(bad.dump());
    CHECK(set_clips(nlohmann::json::array({pair, pair, pair, bad, pair, pair, pair, pair}))
              .find("act.segment_clips holds a factor outside (0, 1]") != std::string::npos);
  }
  for (const nlohmann::json& bad :
       {nlohmann::json::array({0.5}), nlohmann::json::array({"a", "b"}), nlohmann::json(0.5),
        nlohmann::json::array({0.5, 0.5, 0.5})}) {
    CAPTURE(bad.dump());
    CHECK(set_clips(nlohmann::json::array({pair, pair, pair, pair, pair, pair, pair, bad}))
              .find("act.segment_clips holds an entry that is not a [min, max] pair") !=
          std::string::npos);
  }
  CHECK(edit_manifest([&](nlohmann::json& j) { j["config"]["n_heads"] = 7; })
            .find("not a multiple") != std::string::npos);
  CHECK(edit_manifest([&](nlohmann::json& j) { j["recipe"]["kv_bits"] = 5; })
            .find("unsupported bit widths") != std::string::npos);
  CHECK(edit_manifest([&](nlohmann::json& j) {
          auto& ts = j["tensors"];
          for (size_t i = 0; i < ts.size(); ++i)
            if (ts[i]["name"] == "final_norm") ts.erase(i);
        }).find("missing tensor 'final_norm'") != std::string::npos);
}

TEST_CASE("rotor file: info shows the recipe") {
  TempDir tmp;
  write_file(tmp.file("m.rotor"), quantized_bytes());
  CliResult r = run_rotor({"info", tmp.file("m.rotor"), "--json"});
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["format"] == "rotor");
  CHECK(j["recipe"]["weights"] == "rtn");
  CHECK(j["recipe"]["w_bits"] == 4);
  CHECK(j["recipe"]["kv_bits"] == 8);
  CHECK(j["chat_template"] == "chatml");
  r = run_rotor({"info", tmp.file("m.rotor")});
  CHECK(r.out.find("4-bit asymmetric per channel, rtn") != std::string::npos);
}

TEST_CASE("rotor file: chat and serve use the template the file names, unless overridden") {
  TempDir tmp;
  write_file(tmp.file("m.rotor"), quantized_bytes());
  auto m = load_model(tmp.file("m.rotor"));
  std::string why;
  Args plain("chat", "", "");
  add_template_options(plain);
  char* none[] = {nullptr};
  REQUIRE(plain.parse(0, none));
  CHECK(template_from_args(plain, *m, &why).name() == "chatml");
  CHECK(why == "named in the model file");
  Args forced("chat", "", "");
  add_template_options(forced);
  std::string flag = "--template", value = "zephyr";
  char* argv[] = {flag.data(), value.data()};
  REQUIRE(forced.parse(2, argv));
  CHECK(template_from_args(forced, *m, &why).name() == "zephyr");
}

TEST_CASE("rotor file: the CLI refuses a damaged file with exit code 2") {
  TempDir tmp;
  std::string bad = quantized_bytes();
  bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 1);
  write_file(tmp.file("bad.rotor"), bad);
  CliResult r = run_rotor({"run", "-m", tmp.file("bad.rotor"), "-n", "4"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("checksum mismatch (corrupted file)") != std::string::npos);
  write_file(tmp.file("cut.rotor"), quantized_bytes().substr(0, 1000));
  r = run_rotor({"info", tmp.file("cut.rotor")});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("truncated rotor file") != std::string::npos);
}
