#include "engine/thread_pool.h"

#include <chrono>
#include <stdexcept>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace rotor {

namespace {

// How long a waiting thread spins before it sleeps: longer than the gaps between the jobs of
// one token (norms, RoPE, sampling), short enough that an idle pool soon stops using the CPU.
constexpr std::chrono::microseconds kSpin{200};

// The pool whose task this thread is running (nested calls run inline), and as which worker.
thread_local const ThreadPool* tl_pool = nullptr;
thread_local int tl_worker = 0;

// The task half of ThreadPool::claim_ when no task may be claimed.
constexpr uint64_t kClosed = 0xFFFFFFFF;

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

int checked_size(int n) {
  if (n < 1) throw std::invalid_argument("a thread pool needs at least one worker");
  return n;
}

}  // namespace

ThreadPool::ThreadPool(int n_workers) { start(checked_size(n_workers)); }

ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::resize(int n) {
  if (tl_pool == this) throw std::logic_error("ThreadPool::resize from inside a task");
  std::lock_guard<std::mutex> lock(caller_);
  if (checked_size(n) == size_) return;
  stop();
  start(n);
}

void ThreadPool::start(int n) {
  size_ = n;
  stopping_ = false;
  const unsigned generation = generation_.load();
  for (int w = 1; w < n; ++w) threads_.emplace_back(&ThreadPool::thread_main, this, w, generation);
}

void ThreadPool::stop() {
  stopping_ = true;
  generation_.fetch_add(1);
  wake(job_ready_);
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

// The atomics below are sequentially consistent on purpose: a sleeper increments sleepers_ and
// then checks its condition, a waker changes the condition and then reads sleepers_, so one of
// them always sees the other and no wake-up is lost.
template <class Ready>
void ThreadPool::await(std::condition_variable& cv, Ready ready) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  while (!ready()) {
    if (std::chrono::steady_clock::now() < deadline) {
      cpu_relax();
      continue;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    sleepers_.fetch_add(1);
    cv.wait(lock, ready);
    sleepers_.fetch_sub(1);
    return;
  }
}

void ThreadPool::wake(std::condition_variable& cv) {
  if (sleepers_.load() == 0) return;
  // Taking the mutex orders this after a sleeper's last check of its condition.
  { std::lock_guard<std::mutex> lock(mutex_); }
  cv.notify_all();
}

void ThreadPool::thread_main(int worker, unsigned generation) {
  tl_pool = this;
  tl_worker = worker;
  for (;;) {
    await(job_ready_, [&] { return generation_.load() != generation; });
    generation = generation_.load();
    if (stopping_) return;
    take_tasks(worker);
  }
}

void ThreadPool::take_tasks(int worker) {
  uint64_t claim = claim_.load();
  // Read after the claim word. A job's fields are written while its claims are closed, so if
  // the compare-exchange below succeeds they were this job's.
  const Call call = call_.load();
  void* const fn = fn_.load();
  const int n_tasks = n_tasks_.load();
  const uint64_t job = claim >> 32;
  for (;;) {
    if (claim >> 32 != job || (claim & kClosed) >= static_cast<uint64_t>(n_tasks)) return;
    if (!claim_.compare_exchange_weak(claim, claim + 1)) continue;
    if (!failed_) {
      try {
        call(fn, static_cast<int>(claim & kClosed), worker);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
        failed_ = true;
      }
    }
    if (done_.fetch_add(1) + 1 == n_tasks) wake(job_done_);
    claim = claim_.load();
  }
}

void ThreadPool::run(int n_tasks, Call call, void* fn) {
  if (n_tasks <= 0) return;
  if (tl_pool == this) {  // nested: this thread is already one of the workers
    for (int task = 0; task < n_tasks; ++task) call(fn, task, tl_worker);
    return;
  }
  tl_pool = this;
  tl_worker = 0;
  struct Leave {
    ~Leave() { tl_pool = nullptr; }
  } leave;
  // One task, or no other worker: the caller runs the tasks itself, without the job handshake
  // or the callers' lock, as it touches nothing shared (stories260K's decode hands the pool
  // some fifty small jobs per token; the size does not change while a job runs).
  if (n_tasks == 1 || size_ == 1) {
    for (int task = 0; task < n_tasks; ++task) call(fn, task, 0);
    return;
  }
  std::lock_guard<std::mutex> lock(caller_);
  // The next job number, closed to claims until its fields are written.
  const uint64_t job = ((claim_.load() >> 32) + 1) << 32;
  claim_ = job | kClosed;
  call_ = call;
  fn_ = fn;
  n_tasks_ = n_tasks;
  done_ = 0;
  failed_ = false;
  claim_ = job;
  generation_.fetch_add(1);
  wake(job_ready_);
  take_tasks(0);
  await(job_done_, [&] { return done_.load() == n_tasks; });
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

}  // namespace rotor
