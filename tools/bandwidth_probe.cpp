#include "tools/bandwidth_probe.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "engine/kernels/kernels.h"

namespace rotor {

BandwidthProbe::BandwidthProbe(int threads, size_t bytes)
    : threads_(threads), bytes_(bytes), buf_(bytes, Pages::kHuge) {
  for (size_t i = 0; i < bytes_; ++i) buf_[i] = static_cast<uint8_t>(i);
}

double BandwidthProbe::sample() {
  using Clock = std::chrono::steady_clock;
  const KernelTable& k = kernels();
  const size_t per = bytes_ / threads_;
  std::vector<uint64_t> sink(threads_);
  double best = 0.0;
  for (int pass = 0; pass < 3; ++pass) {
    std::vector<std::thread> pool;
    const auto t0 = Clock::now();
    for (int t = 0; t < threads_; ++t)
      pool.emplace_back([&, t] { sink[t] = k.byte_total(buf_.data() + t * per, per); });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, static_cast<double>(per) * threads_ / s);
  }
  volatile uint64_t keep = 0;  // the sums must be computed
  for (uint64_t s : sink) keep = keep + s;
  return best;
}

}  // namespace rotor
