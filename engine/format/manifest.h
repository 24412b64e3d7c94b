// The manifest section of the compact file: config, recipe and tensor table as JSON.
// Shared by the writer (quant/) and the reader (engine/import/) so the two cannot drift.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "engine/config.h"
#include "engine/recipe.h"

namespace rotor::format {

nlohmann::json config_to_json(const ModelConfig& c);
// Throws Error("<where>: ...") on a missing or mistyped field.
ModelConfig config_from_json(const nlohmann::json& j, const std::string& where);

nlohmann::json recipe_to_json(const Recipe& r);
Recipe recipe_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace rotor::format
