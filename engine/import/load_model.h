// Opens any model file rotor runs and picks the importer for its format:
//   a directory                      -> Hugging Face LLaMA (config.json + *.safetensors)
//   a file starting with "ROTORLLM"  -> compact rotor file (docs/FORMAT.md)
//   any other file                   -> llama2.c v0 checkpoint
#pragma once
#include <memory>
#include <string>

#include "engine/model.h"

namespace rotor {

struct LoadOptions {
  std::string tokenizer_path;      // "" = the tokenizer.model beside the model
  bool require_tokenizer = true;   // `rotor info` can describe a model without one
  // How a rotor or llama2.c file's weights reach memory; a Hugging Face directory's are always
  // converted into the process's memory.
  FileAccess access = FileAccess::kMap;
};

std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& options = {});

// Format-specific importers; load_model() is the entry point everyone else uses.
std::unique_ptr<Model> import_llama2c(const std::string& path,
                                      FileAccess access = FileAccess::kMap);
std::unique_ptr<Model> import_hf(const std::string& dir);
std::unique_ptr<Model> import_rotor(const std::string& path,
                                    FileAccess access = FileAccess::kMap);

}  // namespace rotor
