// The offline quantizer: turns any loaded model into a compact rotor file by a recipe.
#pragma once
#include <functional>
#include <string>

#include "engine/model.h"
#include "engine/recipe.h"
#include "tokenizer/tokenizer.h"

namespace rotor {

struct QuantizeProgress {
  std::string stage;  // "calibrate", "psot", "bdq", "quantize", "tune weights"
  int done = 0, total = 0;
  double seconds = 0.0;  // time of the step just finished (a window or a layer)
  std::string note;      // a line worth logging ("" = none), e.g. PSOT's objective per layer
};

struct QuantizeReport {
  uint64_t file_bytes = 0;
  double bits_per_weight = 0.0;  // file bits / parameters
  double seconds = 0.0;
};

struct QuantizeInputs {
  // Calibration text: needed by GPTQ, PSOT and BDQ; with it, activation clip factors are
  // searched too (the recipe names the file in recipe.calib). "" = none.
  std::string calib_text;
  std::string chat_template;  // the model's chat template to name in the file ("" = none)
  std::string hadamard_dir;   // the stored Hadamard factors (hadM.txt), for rotations
};

// True when the recipe cannot do without calibration text.
bool recipe_calibrates(const Recipe& recipe);

QuantizeReport quantize_model(const Model& source, const Tokenizer& tokenizer,
                              const Recipe& recipe, const QuantizeInputs& inputs,
                              const std::string& out_path,
                              const std::function<void(const QuantizeProgress&)>& progress);

}  // namespace rotor
