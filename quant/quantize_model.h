// The offline quantizer: turns any loaded model into a compact rotor file by a recipe.
#pragma once
#include <functional>
#include <string>

#include "engine/model.h"
#include "engine/recipe.h"
#include "tokenizer/tokenizer.h"

namespace rotor {

struct QuantizeProgress {
  std::string stage;  // "calibrate", "quantize"
  int done = 0, total = 0;
  double seconds = 0.0;  // time of the step just finished (a window or a layer)
};

struct QuantizeReport {
  uint64_t file_bytes = 0;
  double bits_per_weight = 0.0;  // file bits / parameters
  double seconds = 0.0;
};

// calib_text is needed for GPTQ (recipe.weights == "gptq"); recipe.calib names it.
// chat_template names the model's chat template in the file ("" = none).
QuantizeReport quantize_model(const Model& source, const Tokenizer& tokenizer,
                              const Recipe& recipe, const std::string& calib_text,
                              const std::string& chat_template, const std::string& out_path,
                              const std::function<void(const QuantizeProgress&)>& progress);

}  // namespace rotor
