// The file checksum's lanes (checksum_lanes) as loading runs them: kChecksumWays 16 MiB chunks
// side by side, from memory (each iteration the next group of a buffer far larger than the
// last-level cache), and one chunk alone for comparison.
#include <algorithm>
#include <vector>

#include "bench/bench.h"
#include "engine/format/rotor_format.h"

namespace rotor::bench {

namespace {

void lanes_from_memory(benchmark::State& state, Isa isa, int ways) {
  const size_t chunk = format::kChecksumChunk;
  const size_t groups = 16;  // 1 GiB at four ways
  std::vector<uint8_t> bytes(groups * ways * chunk);
  for (size_t i = 0; i < bytes.size(); i += 4096) bytes[i] = static_cast<uint8_t>(i >> 12);
  std::vector<uint64_t> lanes(4 * ways);
  const KernelTable& k = kernels_for(isa);
  size_t g = 0;
  for (auto _ : state) {
    const uint8_t* p[kChecksumWays];
    for (int c = 0; c < ways; ++c) p[c] = &bytes[(g * ways + c) * chunk];
    k.checksum_lanes(p, ways, chunk, lanes.data());
    g = (g + 1) % groups;
    benchmark::DoNotOptimize(lanes.data());
  }
  set_work(state, static_cast<double>(ways) * chunk, 0);
}

}  // namespace

void register_checksum(Isa isa) {
  for (int ways : {1, kChecksumWays})
    benchmark::RegisterBenchmark(
        bench_name("checksum_lanes_dram", isa, std::to_string(ways) + "x16MiB").c_str(),
        lanes_from_memory, isa, ways)
        ->Unit(benchmark::kMillisecond);
}

}  // namespace rotor::bench
