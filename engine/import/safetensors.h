// Reads the tensor index of one or more .safetensors files (8-byte header length, a JSON
// header, then raw little-endian data) and hands out validated views into the mappings.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/mapped_file.h"

namespace rotor {

struct SafeTensor {
  std::string name;
  std::string dtype;             // "F32", "F16", "BF16", ...
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  uint64_t bytes = 0;
  std::string file;              // for error messages
};

class SafeTensorsIndex {
 public:
  // Maps the file and adds its tensors; throws Error naming the file on any inconsistency.
  void add_file(const std::string& path);
  const SafeTensor* find(const std::string& name) const;
  // The tensor, converted to fp32, checked against the expected shape.
  std::vector<float> read_f32(const std::string& name, const std::vector<int64_t>& shape) const;
  // Storage type of a tensor ("f32", "bf16", "f16").
  std::string dtype_of(const std::string& name) const;

 private:
  std::vector<std::unique_ptr<MappedFile>> mappings_;
  std::map<std::string, SafeTensor> tensors_;
};

}  // namespace rotor
