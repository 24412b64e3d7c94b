#include "engine/threads.h"

#include <cblas.h>
#include <sched.h>

#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace rotor {

namespace {
// The (package, core) a CPU belongs to, from sysfs; false when the topology is not readable.
bool core_of(int cpu, std::pair<int, int>& core) {
  const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
  std::ifstream package(dir + "physical_package_id"), id(dir + "core_id");
  return static_cast<bool>(package >> core.first) && static_cast<bool>(id >> core.second);
}
}  // namespace

int default_thread_count() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  std::set<std::pair<int, int>> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    std::pair<int, int> core;
    if (!core_of(cpu, core)) return CPU_COUNT(&set);  // no topology: count logical CPUs
    cores.insert(core);
  }
  return cores.empty() ? 1 : static_cast<int>(cores.size());
}

// OpenBLAS's threads spin for a long while after each call; next to the pool's they would
// take turns on the cores (measured: stories260K fp32 decode at 2 threads fell from ~500 to
// ~20 tok/s). So OpenBLAS runs on the calling thread, and the pool splits its products.
void set_thread_count(int n) {
  thread_pool().resize(n);
  openblas_set_num_threads(1);
}

ThreadPool& thread_pool() {
  // Never destroyed: its threads must outlive anything that still runs at exit.
  static ThreadPool* pool = new ThreadPool(default_thread_count());
  return *pool;
}

}  // namespace rotor
