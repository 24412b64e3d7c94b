// The machine's memory read bandwidth, for rotor bench's decode roofline. Sampled once per
// repeat, right after that repeat's decode: on a shared or virtual machine the bandwidth a core
// pair gets can change by half within seconds (seen here: 35 and 65 GB/s minutes apart), so a
// single probe would set every repeat's decode against whichever state it happened to catch.
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/zeroed_array.h"

namespace rotor {

class BandwidthProbe {
 public:
  // A buffer much larger than the caches, touched once here (so later samples read memory,
  // not fresh zero pages), in 2 MB pages where the kernel gives them, as MappedFile asks for
  // the model's weights: read through 4 KB pages the same loads stream markedly slower (here
  // 24 against 32 GB/s on one core, 40 against 59 on two), so a probe in 4 KB pages would
  // understate what the weights can be read at.
  BandwidthProbe(int threads, size_t bytes = size_t{512} << 20);
  // Bytes per second: `threads` threads each sum their slice with the kernels' byte total (the
  // widest vector loads this CPU has); the best of a few passes.
  double sample();

 private:
  int threads_;
  size_t bytes_;
  ZeroedArray<uint8_t> buf_;  // in Pages::kHuge
};

}  // namespace rotor
