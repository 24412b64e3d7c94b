#include "quant/rotor_writer.h"

#include <cstdio>
#include <cstring>
#include <fstream>

#include "engine/error.h"
#include "engine/format/manifest.h"
#include "engine/format/rotor_format.h"

namespace rotor {

using nlohmann::json;
namespace fmt = rotor::format;

RotorFileWriter::RotorFileWriter(const ModelConfig& config, const Recipe& recipe,
                                 std::string tokenizer_bytes)
    : tokenizer_(std::move(tokenizer_bytes)) {
  manifest_ = {{"config", fmt::config_to_json(config)},
               {"recipe", fmt::recipe_to_json(recipe)},
               {"tensors", json::array()}};
}

json RotorFileWriter::append(const void* data, size_t bytes) {
  data_.resize(fmt::align_up(data_.size()), '\0');
  const size_t offset = data_.size();
  data_.append(static_cast<const char*>(data), bytes);
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
  // Round to nearest even; values are model weights, far inside the f16 range.
  std::vector<uint16_t> half(data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    uint32_t f;
    std::memcpy(&f, &data[i], 4);
    const uint32_t sign = (f >> 16) & 0x8000u;
    const int exp = static_cast<int>((f >> 23) & 0xFF) - 127 + 15;
    uint32_t mant = f & 0x7FFFFFu;
    uint16_t h;
    if (exp >= 31) {
      h = static_cast<uint16_t>(sign | 0x7C00u);
    } else if (exp <= 0) {  // subnormal or zero
      if (exp < -10) {
        h = static_cast<uint16_t>(sign);
      } else {
        mant |= 0x800000u;
        const int shift = 14 - exp;
        uint32_t v = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1), half_way = 1u << (shift - 1);
        if (rem > half_way || (rem == half_way && (v & 1))) ++v;
        h = static_cast<uint16_t>(sign | v);
      }
    } else {
      uint32_t v = (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
      const uint32_t rem = mant & 0x1FFFu;
      if (rem > 0x1000u || (rem == 0x1000u && (v & 1))) ++v;  // may carry into the exponent
      h = static_cast<uint16_t>(sign | v);
    }
    half[i] = h;
  }
  json t = append(half.data(), half.size() * sizeof(uint16_t));
  t["name"] = name;
  t["type"] = "f16";
  t["shape"] = shape;
  manifest_["tensors"].push_back(t);
}

void RotorFileWriter::add_packed(const std::string& name, const QuantizedMatrix& m,
                                 const ActQuantParams& act) {
  json t = {{"name", name},          {"type", "packed"},  {"rows", m.rows},
            {"cols", m.cols},        {"cols_padded", m.cols_padded},
            {"bits", m.bits},        {"group", m.group},  {"block", m.block}};
  t["act"] = {{"bits", act.bits}, {"segment", act.segment},
              {"clip_min", act.clip_min}, {"clip_max", act.clip_max}};
  t["parts"] = {{"codes", append(m.codes.data(), m.codes.size())},
                {"scales", append(m.scales.data(), m.scales.size() * sizeof(float))},
                {"zeros", append(m.zeros.data(), m.zeros.size() * sizeof(int32_t))},
                {"sums", append(m.sums.data(), m.sums.size() * sizeof(int32_t))}};
  manifest_["tensors"].push_back(t);
}

uint64_t RotorFileWriter::write(const std::string& path) const {
  const std::string manifest = manifest_.dump();
  struct Section {
    uint32_t kind;
    const std::string* bytes;
  };
  const Section sections[] = {{fmt::kManifest, &manifest},
                              {fmt::kTokenizer, &tokenizer_},
                              {fmt::kTensorData, &data_}};
  const uint32_t count = 3;

  fmt::FileHeader header{};
  std::memcpy(header.magic, fmt::kMagic, sizeof header.magic);
  header.version = fmt::kVersion;
  header.section_count = count;
  header.directory_offset = sizeof(fmt::FileHeader);
  std::vector<fmt::SectionEntry> dir(count);
  uint64_t offset = fmt::align_up(sizeof(fmt::FileHeader) + count * sizeof(fmt::SectionEntry));
  for (uint32_t i = 0; i < count; ++i) {
    dir[i].kind = sections[i].kind;
    dir[i].flags = fmt::kSectionRequired;
    dir[i].offset = offset;
    dir[i].size = sections[i].bytes->size();
    dir[i].checksum = fmt::checksum(sections[i].bytes->data(), sections[i].bytes->size());
    offset = fmt::align_up(offset + dir[i].size);
  }
  header.file_size = dir[count - 1].offset + dir[count - 1].size;
  header.directory_checksum = fmt::checksum(dir.data(), count * sizeof(fmt::SectionEntry));
  header.header_checksum = fmt::checksum(&header, offsetof(fmt::FileHeader, header_checksum));

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot create the output file");
    out.write(reinterpret_cast<const char*>(&header), sizeof header);
    out.write(reinterpret_cast<const char*>(dir.data()), count * sizeof(fmt::SectionEntry));
    for (uint32_t i = 0; i < count; ++i) {
      const std::string pad(dir[i].offset - static_cast<uint64_t>(out.tellp()), '\0');
      out.write(pad.data(), static_cast<std::streamsize>(pad.size()));
      out.write(sections[i].bytes->data(), static_cast<std::streamsize>(sections[i].bytes->size()));
    }
    if (!out.flush()) {
      std::remove(tmp.c_str());
      throw Error(path + ": write failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot move the finished file into place");
  }
  return header.file_size;
}

}  // namespace rotor
