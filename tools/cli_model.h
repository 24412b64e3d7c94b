// The model-loading flags every subcommand shares (-m, --tokenizer, --threads, --no-mmap) and what
// they produce: a model with its tokenizer, checked against each other.
#pragma once
#include <memory>
#include <string>

#include "engine/model.h"
#include "tokenizer/tokenizer.h"
#include "tools/args.h"

namespace rotor {

void add_model_options(Args& args);

struct LoadedModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

// Loads the model named by -m (or `path` when given), applies --threads.
LoadedModel load_model_from_args(const Args& args, const std::string& path = "");

}  // namespace rotor
