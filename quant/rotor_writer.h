// Writes a compact model file (docs/FORMAT.md): tensors are collected, then written at once
// to PATH.tmp and renamed, so a failed run never leaves a half-written model behind.
#pragma once
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/kernels/kernels.h"
#include "engine/recipe.h"
#include "quant/quantized_matrix.h"
#include <nlohmann/json.hpp>

namespace rotor {

class RotorFileWriter {
 public:
  RotorFileWriter(const ModelConfig& config, const Recipe& recipe, std::string tokenizer_bytes);

  void add_f32(const std::string& name, const std::vector<float>& data,
               const std::vector<int64_t>& shape);
  void add_f16(const std::string& name, const std::vector<float>& data,
               const std::vector<int64_t>& shape);
  // A packed matrix and how its input activations are quantized at run time.
  void add_packed(const std::string& name, const QuantizedMatrix& m, const ActQuantParams& act);

  // The chat template the model was tuned with ("llama2", "chatml", ...), for chat and serve.
  void set_chat_template(const std::string& name) { manifest_["chat_template"] = name; }

  // Returns the file size in bytes. Throws Error on I/O failure.
  uint64_t write(const std::string& path) const;

 private:
  // Appends bytes to the data section at a 64-byte boundary; returns {offset, bytes}.
  nlohmann::json append(const void* data, size_t bytes);

  nlohmann::json manifest_;
  std::string tokenizer_;
  std::string data_;
};

}  // namespace rotor
