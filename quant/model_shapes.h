// The shapes of known LLaMA-family models, for synthetic files (`rotor synth`) that measure
// speed at real sizes without the real weights.
#pragma once
#include <string>
#include <vector>

#include "engine/config.h"

namespace rotor {

struct NamedShape {
  const char* name;
  ModelConfig config;
};

// tinyllama-1.1b, llama2-7b, llama3-8b: their published configs (all with an untied classifier).
const std::vector<NamedShape>& model_shapes();
// The shape called `name`; throws Error listing the known names otherwise.
ModelConfig model_shape(const std::string& name);

}  // namespace rotor
