// The token embedding table: one row of dim floats per token, stored in full precision or as
// packed integer rows (the same PackedMatrix the tied classifier reads).
#pragma once
#include <cstddef>

#include "engine/kernels/kernels.h"

namespace rotor {

class Embedding {
 public:
  virtual ~Embedding() = default;
  virtual void lookup(int token, float* out) const = 0;
  virtual size_t row_bytes() const = 0;
};

class EmbeddingF32 final : public Embedding {
 public:
  EmbeddingF32(const float* table, int dim) : table_(table), dim_(dim) {}
  void lookup(int token, float* out) const override;
  size_t row_bytes() const override { return sizeof(float) * dim_; }
  const float* data() const { return table_; }

 private:
  const float* table_;
  int dim_;
};

class EmbeddingPacked final : public Embedding {
 public:
  explicit EmbeddingPacked(const PackedMatrix& table) : table_(table) {}
  void lookup(int token, float* out) const override { dequantize_rows(table_, token, token + 1, out); }
  size_t row_bytes() const override { return table_.row_bytes(); }

 private:
  PackedMatrix table_;
};

}  // namespace rotor
