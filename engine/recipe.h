// How a compact model file was quantized: stored in the file, shown by `rotor info`, and read
// by the engine where it matters at run time (KV cache bits).
#pragma once
#include <cstdint>
#include <string>

namespace rotor {

struct Recipe {
  int w_bits = 4;            // 4 or 8; 16 or 32 keep the weights in float (for comparison)
  int group = 0;             // weight columns per scale; 0 = per output channel
  bool w_sym = false;        // symmetric weights (zero point fixed at 0)
  std::string weights = "gptq";  // rounding: "rtn" or "gptq"
  int a_bits = 8;            // activations: 4, 8, or 16 (= float)
  int kv_bits = 8;           // KV cache: 4, 8, or 16 (= float)
  int embed_bits = 8;        // token embedding: 4, 8, 16 or 32
  int classifier_bits = 8;   // lm_head: 4, 8, 16 or 32 (equal to embed_bits when tied)
  // K cache layout at 4/8 bits: 0 = per (token, KV head); G > 0 = per channel over groups of
  // G tokens, the newest partial group kept in float (KIVI), see docs/QUALITY.md.
  int kv_k_group = 0;
  std::string rotation = "none";  // "none", "hadamard", "psot", "psot-layer" (METHODS.md §2-3)
  bool bdq = false;               // two-sided diagonal scales (METHODS.md §4)
  int tune_epochs = 0;       // end-to-end tuning of the weights (quant/weight_tuning.h); 0 = none
  bool tune_rounding = false;  // that tuning also learned the rounding, not only the scales
  std::string calib;         // calibration text (file name), "" when none was used
  int calib_windows = 0;
  int calib_ctx = 0;
  uint64_t seed = 0;
  std::string tool_version;
};

}  // namespace rotor
