// A loaded model: config, weights behind the Linear interface, and the tokenizer bytes.
// Created by load_model() (engine/import/), which picks the importer for the file format.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/embedding.h"
#include "engine/hadamard.h"
#include "engine/linear.h"
#include "engine/mapped_file.h"
#include "engine/recipe.h"
#include "engine/residual_blocks.h"

namespace rotor {

struct LayerWeights {
  const float* attn_norm = nullptr;  // [dim]
  std::unique_ptr<Linear> wq, wk, wv, wo;
  const float* ffn_norm = nullptr;  // [dim]
  std::unique_ptr<Linear> w_gate, w_up, w_down;

  // Online steps of a rotated model (METHODS.md §2-4); nullptr = none.
  const float* down_scale = nullptr;  // [hidden]: BDQ's 1/s on the down_proj input, after R4
  // psot-layer: block-diagonal basis changes of the residual stream, applied before adding
  // the attention output and before adding the MLP output.
  ResidualBlocks resid_attn, resid_mlp;
};

// The online rotations of a rotated model (METHODS.md §2); nullptr = none.
struct OnlineRotations {
  std::unique_ptr<HadamardTransform> qk;    // R3: head-wise on Q and K after RoPE
  std::unique_ptr<HadamardTransform> down;  // R4: on the down_proj input
  int resid_blocks = 1;                     // blocks of resid_attn / resid_mlp
};

struct Model {
  ModelConfig config;
  std::string path;     // what the user named
  std::string format;   // "llama2.c", "hf-safetensors", "rotor"
  uint32_t format_version = 0;  // rotor files: the version of the file's layout
  std::string dtype;    // storage type of the source weights: "f32", "bf16", "f16"
  uint64_t file_bytes = 0;

  std::unique_ptr<Embedding> embedding;  // [vocab, dim]
  std::vector<LayerWeights> layers;
  OnlineRotations online;
  const float* final_norm = nullptr;  // [dim]
  std::unique_ptr<Linear> classifier;  // [vocab, dim]

  bool quantized = false;  // a compact file: recipe below applies
  std::string chat_template;  // the chat template a compact file names ("" = none)
  Recipe recipe;
  int kv_bits() const { return quantized ? recipe.kv_bits : 32; }

  std::string tokenizer_path;   // where the SentencePiece model came from ("" if none)
  std::string tokenizer_proto;  // its serialized bytes ("" if none was found)

  // Storage the pointers above refer to: mapped files and converted tensors.
  std::vector<std::unique_ptr<MappedFile>> mappings;
  std::vector<std::vector<float>> owned;

  // Keeps a converted tensor alive for the model's lifetime and returns its data.
  const float* keep(std::vector<float>&& tensor);
  // Bytes of weights one decoded token reads: all linears, psot-layer's residual blocks and
  // one embedding row.
  uint64_t weight_bytes_per_token() const;
};

}  // namespace rotor
