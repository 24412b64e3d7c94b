// Writes a compact model file (docs/FORMAT.md) to PATH.tmp and renames it when complete, so a
// failed run never leaves a half-written model behind. Two modes: in memory (tensors are
// collected, write() lays the file out in one go) and streaming (each tensor goes to disk as it
// is added, for models too large to hold; finish() completes the file).
#pragma once
#include <fstream>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/kernels/kernels.h"
#include "engine/format/rotor_format.h"
#include "engine/recipe.h"
#include "quant/float_model.h"
#include "quant/quantized_matrix.h"
#include <nlohmann/json.hpp>

namespace rotor {

class RotorFileWriter {
 public:
  // In memory: finish with write(path).
  RotorFileWriter(const ModelConfig& config, const Recipe& recipe, std::string tokenizer_bytes);
  // Streaming to `path`: finish with finish(). The tensor data comes first in the file, the
  // manifest and tokenizer after it; an unfinished file is removed at destruction.
  RotorFileWriter(const ModelConfig& config, const Recipe& recipe, std::string tokenizer_bytes,
                  const std::string& path);
  ~RotorFileWriter();
  RotorFileWriter(const RotorFileWriter&) = delete;
  RotorFileWriter& operator=(const RotorFileWriter&) = delete;

  void add_f32(const std::string& name, const std::vector<float>& data,
               const std::vector<int64_t>& shape);
  void add_f16(const std::string& name, const std::vector<float>& data,
               const std::vector<int64_t>& shape);
  // A packed matrix and how its input activations are quantized at run time.
  void add_packed(const std::string& name, const QuantizedMatrix& m, const ActQuantParams& act);

  // An online Hadamard transform the engine runs (manifest "online"): size n = 2^k·m, sign
  // seed, and for m > 1 the factor stored as tensor "online.<name>.factor" [m, m]. Nothing
  // for an unused spec (n = 0).
  void add_online_hadamard(const std::string& name, const HadamardSpec& h);
  // Dense blocks of the psot-layer residual basis changes.
  void set_resid_blocks(int blocks) { manifest_["online"]["resid_blocks"] = blocks; }

  // The chat template the model was tuned with ("llama2", "chatml", ...), for chat and serve.
  void set_chat_template(const std::string& name) { manifest_["chat_template"] = name; }

  // Return the file size in bytes; throw Error on I/O failure. write() is for in-memory
  // writers, finish() for streaming ones.
  uint64_t write(const std::string& path) const;
  uint64_t finish();

 private:
  // Appends bytes to the data section at a 64-byte boundary; returns {offset, bytes}.
  nlohmann::json append(const void* data, size_t bytes);
  void put(const void* data, size_t bytes);

  nlohmann::json manifest_;
  std::string tokenizer_;
  std::string data_;        // in memory
  uint64_t data_size_ = 0;
  std::string path_;        // streaming: the destination, PATH.tmp open in out_
  std::ofstream out_;
  format::SectionChecksum data_checksum_;
};

}  // namespace rotor
