#include "quant/quantized_matrix.h"

namespace rotor {

PackedMatrix QuantizedMatrix::view() const {
  PackedMatrix p;
  p.rows = rows;
  p.cols = cols;
  p.cols_padded = cols_padded;
  p.bits = bits;
  p.group = group;
  p.block = block;
  p.codes = codes.data();
  p.scales = scales.data();
  p.zeros = zeros.data();
  p.sums = sums.data();
  return p;
}

}  // namespace rotor
