#include "quant/rotor_writer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "engine/error.h"
#include "engine/format/manifest.h"
#include "engine/format/rotor_format.h"
#include "engine/import/dtype.h"

namespace rotor {

using nlohmann::json;
namespace fmt = rotor::format;

namespace {

constexpr uint32_t kSectionCount = 3;  // manifest, tokenizer, tensor data

struct Section {
  uint32_t kind;
  uint64_t size;
  uint64_t checksum;
};

// Where the first section starts: after the header and directory.
uint64_t first_section_offset() {
  return fmt::align_up(sizeof(fmt::FileHeader) + kSectionCount * sizeof(fmt::SectionEntry));
}

// Header and directory for the sections laid out in this order, each 64-byte aligned.
fmt::FileHeader frame(const Section (&sections)[kSectionCount],
                      std::vector<fmt::SectionEntry>* dir) {
  fmt::FileHeader header{};
  std::memcpy(header.magic, fmt::kMagic, sizeof header.magic);
  header.version = fmt::kVersion;
  header.section_count = kSectionCount;
  header.directory_offset = sizeof(fmt::FileHeader);
  dir->assign(kSectionCount, {});
  uint64_t offset = first_section_offset();
  for (uint32_t i = 0; i < kSectionCount; ++i) {
    (*dir)[i] = {sections[i].kind, fmt::kSectionRequired, offset, sections[i].size,
                 sections[i].checksum};
    offset = fmt::align_up(offset + sections[i].size);
  }
  header.file_size = dir->back().offset + dir->back().size;
  header.directory_checksum = fmt::checksum(dir->data(), kSectionCount * sizeof(fmt::SectionEntry));
  header.header_checksum = fmt::checksum(&header, offsetof(fmt::FileHeader, header_checksum));
  return header;
}

void put_frame(std::ofstream& out, const fmt::FileHeader& header,
               const std::vector<fmt::SectionEntry>& dir) {
  out.write(reinterpret_cast<const char*>(&header), sizeof header);
  out.write(reinterpret_cast<const char*>(dir.data()),
            static_cast<std::streamsize>(dir.size() * sizeof(fmt::SectionEntry)));
}

// Pads the file with zeros up to `offset` (where the stream must not be yet) and writes bytes.
void put_at(std::ofstream& out, uint64_t offset, const std::string& bytes) {
  const std::string pad(offset - static_cast<uint64_t>(out.tellp()), '\0');
  out.write(pad.data(), static_cast<std::streamsize>(pad.size()));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Flushes and closes PATH.tmp and renames it to PATH; removes it on failure.
void commit(std::ofstream& out, const std::string& path) {
  const std::string tmp = path + ".tmp";
  out.flush();
  const bool ok = static_cast<bool>(out);
  out.close();
  if (!ok) {
    std::remove(tmp.c_str());
    throw Error(path + ": write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot move the finished file into place");
  }
}

void create(std::ofstream& out, const std::string& path) {
  out.open(path + ".tmp", std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot create the output file");
}

}  // namespace

RotorFileWriter::RotorFileWriter(const ModelConfig& config, const Recipe& recipe,
                                 std::string tokenizer_bytes)
    : tokenizer_(std::move(tokenizer_bytes)) {
  manifest_ = {{"config", fmt::config_to_json(config)},
               {"recipe", fmt::recipe_to_json(recipe)},
               {"online", {{"resid_blocks", 1}}},
               {"tensors", json::array()}};
}

RotorFileWriter::RotorFileWriter(const ModelConfig& config, const Recipe& recipe,
                                 std::string tokenizer_bytes, const std::string& path)
    : RotorFileWriter(config, recipe, std::move(tokenizer_bytes)) {
  create(out_, path);
  path_ = path;
  // Room for the header and directory, written by finish() once the checksums are known.
  const std::string placeholder(first_section_offset(), '\0');
  out_.write(placeholder.data(), static_cast<std::streamsize>(placeholder.size()));
}

RotorFileWriter::~RotorFileWriter() {
  if (!out_.is_open()) return;
  out_.close();
  std::remove((path_ + ".tmp").c_str());
}

void RotorFileWriter::put(const void* data, size_t bytes) {
  if (path_.empty()) {
    data_.append(static_cast<const char*>(data), bytes);
    return;
  }
  out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  data_checksum_.update(data, bytes);
}

json RotorFileWriter::append(const void* data, size_t bytes) {
  static const char zeros[fmt::kAlign] = {};
  const uint64_t offset = fmt::align_up(data_size_);
  put(zeros, offset - data_size_);
  put(data, bytes);
  data_size_ = offset + bytes;
  return {{"offset", offset}, {"bytes", bytes}};
}

void RotorFileWriter::add_f32(const std::string& name, const std::vector<float>& data,
                              const std::vector<int64_t>& shape) {
  json t = append(data.data(), data.size() * sizeof(float));
  t["name"] = name;
  t["type"] = "f32";
  t["shape"] = shape;
  manifest_["tensors"].push_back(t);
}

void RotorFileWriter::add_f16(const std::string& name, const std::vector<float>& data,
                              const std::vector<int64_t>& shape) {
  // Model weights, far inside the f16 range.
  std::vector<uint16_t> half(data.size());
  for (size_t i = 0; i < data.size(); ++i) half[i] = f32_to_f16(data[i]);
  json t = append(half.data(), half.size() * sizeof(uint16_t));
  t["name"] = name;
  t["type"] = "f16";
  t["shape"] = shape;
  manifest_["tensors"].push_back(t);
}

void RotorFileWriter::add_online_hadamard(const std::string& name, const HadamardSpec& h) {
  if (h.n == 0) return;
  const int m = static_cast<int>(std::lround(std::sqrt(static_cast<double>(h.h_m.size()))));
  manifest_["online"][name] = {{"n", h.n}, {"seed", h.seed}, {"m", std::max(m, 1)}};
  if (m > 1) add_f16("online." + name + ".factor", std::vector<float>(h.h_m.begin(), h.h_m.end()), {m, m});
}

void RotorFileWriter::add_packed(const std::string& name, const QuantizedMatrix& m,
                                 const ActQuantParams& act) {
  json t = {{"name", name},          {"type", "packed"},  {"rows", m.rows},
            {"cols", m.cols},        {"cols_padded", m.cols_padded},
            {"bits", m.bits},        {"group", m.group},  {"block", m.block}};
  t["act"] = {{"bits", act.bits}, {"segment", act.segment},
              {"clip_min", act.clip_min}, {"clip_max", act.clip_max}};
  for (const ActQuantParams::Clip& c : act.segment_clips)
    t["act"]["segment_clips"].push_back({c.min, c.max});
  t["parts"] = {{"codes", append(m.codes.data(), m.codes.size())},
                {"scales", append(m.scales.data(), m.scales.size() * sizeof(float))},
                {"zeros", append(m.zeros.data(), m.zeros.size() * sizeof(int32_t))},
                {"sums", append(m.sums.data(), m.sums.size() * sizeof(int32_t))}};
  manifest_["tensors"].push_back(t);
}

uint64_t RotorFileWriter::write(const std::string& path) const {
  if (!path_.empty()) throw std::logic_error("write() on a streaming RotorFileWriter");
  const std::string manifest = manifest_.dump();
  const Section sections[kSectionCount] = {
      {fmt::kManifest, manifest.size(), fmt::section_checksum(manifest.data(), manifest.size())},
      {fmt::kTokenizer, tokenizer_.size(), fmt::section_checksum(tokenizer_.data(), tokenizer_.size())},
      {fmt::kTensorData, data_.size(), fmt::section_checksum(data_.data(), data_.size())}};
  std::vector<fmt::SectionEntry> dir;
  const fmt::FileHeader header = frame(sections, &dir);
  std::ofstream out;
  create(out, path);
  put_frame(out, header, dir);
  put_at(out, dir[0].offset, manifest);
  put_at(out, dir[1].offset, tokenizer_);
  put_at(out, dir[2].offset, data_);
  commit(out, path);
  return header.file_size;
}

uint64_t RotorFileWriter::finish() {
  if (!out_.is_open()) throw std::logic_error("finish() on a RotorFileWriter that is not streaming");
  const std::string manifest = manifest_.dump();
  const Section sections[kSectionCount] = {
      {fmt::kTensorData, data_size_, data_checksum_.digest()},
      {fmt::kManifest, manifest.size(), fmt::section_checksum(manifest.data(), manifest.size())},
      {fmt::kTokenizer, tokenizer_.size(), fmt::section_checksum(tokenizer_.data(), tokenizer_.size())}};
  std::vector<fmt::SectionEntry> dir;
  const fmt::FileHeader header = frame(sections, &dir);
  put_at(out_, dir[1].offset, manifest);
  put_at(out_, dir[2].offset, tokenizer_);
  out_.seekp(0);
  put_frame(out_, header, dir);
  commit(out_, path_);
  return header.file_size;
}

}  // namespace rotor
