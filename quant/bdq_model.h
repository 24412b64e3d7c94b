// Applying BDQ (METHODS.md §4) to every linear input of a float model: the scale s of each
// input is chosen on calibration data (quant/bdq.h) and then folded where that is exact —
//   attention / MLP input: into the RMSNorm weight (÷s) and the q/k/v or gate/up columns (×s);
//   o_proj input: into v_proj's rows (÷s, shared by a KV group's query heads) and o_proj's columns;
//   down_proj input: into up_proj's rows without R4; after R4 (rotated models) it cannot be,
//     so the engine applies 1/s online (FloatLayer::down_scale) and down_proj's columns take ×s.
#pragma once
#include <functional>
#include <vector>

#include "engine/recipe.h"
#include "quant/float_model.h"
#include "quant/quantize_model.h"

namespace rotor {

// Which inputs get scales: all four, or (before rotations, kOutputSides) only the o_proj and
// down_proj inputs, whose scales fold into v_proj's and up_proj's rows — METHODS §4's output-side
// scales t. Rotated models take both: t first, so that R2/Q2 and R4 never spread a channel
// that a scale could have evened out (the outlier-injected model's v and up rows), then s.
enum class BdqInputs { kAll, kOutputSides };

void apply_bdq(FloatModel& fm, const Recipe& recipe, const std::vector<std::vector<int>>& windows,
               BdqInputs inputs, const std::function<void(const QuantizeProgress&)>& progress);

}  // namespace rotor
