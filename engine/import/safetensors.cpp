#include "engine/import/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/import/dtype.h"

namespace rotor {

namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int dtype_bytes(const std::string& dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  return 0;
}

}  // namespace

void SafeTensorsIndex::add_file(const std::string& path) {
  mappings_.push_back(std::make_unique<MappedFile>(path));
  const MappedFile& f = *mappings_.back();
  if (f.size() < 8) throw Error(path + ": truncated safetensors file (no header length)");
  uint64_t header_len;
  std::memcpy(&header_len, f.data(), 8);
  if (header_len > f.size() - 8)
    throw Error(path + ": truncated safetensors file (header of " + std::to_string(header_len) +
                " bytes does not fit)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(f.data() + 8, f.data() + 8 + header_len);
  } catch (const nlohmann::json::exception&) {
    throw Error(path + ": corrupted safetensors header (not valid JSON)");
  }
  if (!header.is_object()) throw Error(path + ": corrupted safetensors header (not an object)");
  const uint8_t* base = f.data() + 8 + header_len;
  const uint64_t payload = f.size() - 8 - header_len;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string where = path + ": tensor '" + it.key() + "'";
    const auto& v = it.value();
    SafeTensor t;
    t.name = it.key();
    t.file = path;
    try {
      t.dtype = v.at("dtype").get<std::string>();
      t.shape = v.at("shape").get<std::vector<int64_t>>();
      auto offsets = v.at("data_offsets").get<std::vector<uint64_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1])
        throw Error(where + ": bad data_offsets");
      if (offsets[1] > payload)
        throw Error(where + ": data ends at byte " + std::to_string(offsets[1]) +
                    " past the end of the file (truncated?)");
      t.data = base + offsets[0];
      t.bytes = offsets[1] - offsets[0];
    } catch (const nlohmann::json::exception&) {
      throw Error(where + ": malformed entry in the safetensors header");
    }
    if (tensors_.count(t.name)) throw Error(where + ": appears in more than one file");
    tensors_.emplace(t.name, std::move(t));
  }
}

const SafeTensor* SafeTensorsIndex::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::string SafeTensorsIndex::dtype_of(const std::string& name) const {
  const SafeTensor* t = find(name);
  if (!t) return "";
  std::string d = t->dtype;
  for (char& ch : d) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return d;
}

std::vector<float> SafeTensorsIndex::read_f32(const std::string& name,
                                              const std::vector<int64_t>& shape) const {
  const SafeTensor* t = find(name);
  if (!t) {
    const std::string dir = mappings_.empty() ? "" : mappings_.front()->path();
    throw Error(dir.substr(0, dir.find_last_of('/')) + ": missing tensor '" + name + "'");
  }
  if (t->shape != shape)
    throw Error(t->file + ": tensor '" + name + "' has shape " + shape_string(t->shape) +
                ", expected " + shape_string(shape));
  const int width = dtype_bytes(t->dtype);
  if (width == 0)
    throw Error(t->file + ": tensor '" + name + "' has unsupported dtype " + t->dtype +
                " (rotor reads F32, F16, BF16)");
  uint64_t count = 1;
  for (int64_t s : shape) count *= static_cast<uint64_t>(s);
  if (t->bytes != count * width)
    throw Error(t->file + ": tensor '" + name + "' holds " + std::to_string(t->bytes) +
                " bytes, its shape and dtype need " + std::to_string(count * width));
  std::vector<float> out(count);
  if (width == 4) {
    std::memcpy(out.data(), t->data, t->bytes);
  } else {
    const bool bf16 = t->dtype == "BF16";
    for (uint64_t i = 0; i < count; ++i) {
      uint16_t h;
      std::memcpy(&h, t->data + 2 * i, 2);
      out[i] = bf16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
  }
  return out;
}

}  // namespace rotor
