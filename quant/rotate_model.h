// Rotating a (norm-folded) float model by the recipe's mode (METHODS.md §2-3):
//   hadamard    R1 = randomized Hadamard (D), R2 = Hadamard per KV head (h), R3, R4;
//   psot        one learned residual rotation Q1 for all layers, learned Q2 per KV head, R3, R4;
//   psot-layer  learned Q1_i / Q4_i per layer (b blocks) with the online residual basis changes.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/recipe.h"
#include "quant/float_model.h"
#include "quant/quantize_model.h"

namespace rotor {

// Residual blocks for PSOT: one dense block for small widths, two from 4096 on (METHODS.md §3).
int psot_blocks(int dim);

void rotate_model(FloatModel& fm, const Recipe& recipe,
                  const std::vector<std::vector<int>>& windows, const std::string& hadamard_dir,
                  const std::function<void(const QuantizeProgress&)>& progress);

}  // namespace rotor
