#include "tools/bandwidth_probe.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <new>
#include <thread>
#include <vector>

#include "engine/kernels/kernels.h"

namespace rotor {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;

// bytes in whole 2 MB pages on a 2 MB boundary, asked to be backed by 2 MB pages.
uint8_t* huge_page_buffer(size_t bytes) {
  const size_t size = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, size);
  if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE  // Linux
  ::madvise(p, size, MADV_HUGEPAGE);  // a hint: without it the probe reads 4 KB pages
#endif
  return static_cast<uint8_t*>(p);
}
}  // namespace

BandwidthProbe::BandwidthProbe(int threads, size_t bytes)
    : threads_(threads), bytes_(bytes), buf_(huge_page_buffer(bytes), std::free) {
  for (size_t i = 0; i < bytes_; ++i) buf_.get()[i] = static_cast<uint8_t>(i);
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
      pool.emplace_back([&, t] { sink[t] = k.byte_total(buf_.get() + t * per, per); });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, static_cast<double>(per) * threads_ / s);
  }
  volatile uint64_t keep = 0;  // the sums must be computed
  for (uint64_t s : sink) keep = keep + s;
  return best;
}

}  // namespace rotor
