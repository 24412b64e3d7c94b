// A fixed set of threads for the parallel steps of the forward pass. The calling thread takes
// part as worker 0, so a pool of n workers runs n − 1 threads. Decode hands the pool a job every
// few tens of microseconds, so between jobs the threads first spin on a generation counter
// (waking costs nothing) and only then sleep on a condition variable (an idle pool costs no CPU).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace rotor {

class ThreadPool {
 public:
  explicit ThreadPool(int n_workers = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Workers, the caller included.
  int size() const { return size_; }
  // Restarts the pool with n ≥ 1 workers. Not from inside a task.
  void resize(int n);

  // Runs fn(task, worker) once for every task in [0, n_tasks) and returns when all are done.
  // worker ∈ [0, size()) names the thread running the task (the caller is 0): one worker runs
  // one task at a time, so per-worker scratch needs no lock. If tasks throw, the tasks not yet
  // started are skipped and the first exception is rethrown here once the others have stopped.
  // A call from inside a task runs its tasks inline on that task's thread and worker; calls from
  // two outside threads take turns. A single task, or any job of a one-worker pool, runs on the
  // caller without waking the threads.
  template <class F>
  void parallel_for(int n_tasks, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run(n_tasks, [](void* f, int task, int worker) { (*static_cast<Fn*>(f))(task, worker); },
        const_cast<void*>(static_cast<const void*>(std::addressof(fn))));
  }

 private:
  using Call = void (*)(void* fn, int task, int worker);
  void run(int n_tasks, Call call, void* fn);
  void start(int n);
  void stop();
  void thread_main(int worker, unsigned generation);
  // Claims and runs tasks of the current job until none is left.
  void take_tasks(int worker);
  // Spins, then sleeps on cv, until ready(); wake(cv) is its other half.
  template <class Ready>
  void await(std::condition_variable& cv, Ready ready);
  void wake(std::condition_variable& cv);

  int size_ = 1;
  std::vector<std::thread> threads_;
  std::mutex caller_;  // one outside caller at a time

  // The current job. claim_ holds (job number << 32 | next task): a thread runs a task only
  // after claiming it with a compare-exchange, so a thread that wakes late never runs a task of
  // a later job, and the caller waits for claimed tasks only, never for a thread that is slow
  // to wake (the machine may be busy with other processes).
  std::atomic<Call> call_{nullptr};
  std::atomic<void*> fn_{nullptr};
  std::atomic<int> n_tasks_{0};
  std::atomic<uint64_t> claim_{0};
  std::atomic<int> done_{0};         // tasks finished or skipped
  std::atomic<bool> failed_{false};  // a task threw: skip the rest
  std::exception_ptr error_;         // the first exception of the job (under mutex_)
  std::atomic<unsigned> generation_{0};  // bumped for every job and to stop
  std::atomic<bool> stopping_{false};

  std::mutex mutex_;
  std::condition_variable job_ready_, job_done_;
  std::atomic<int> sleepers_{0};
};

}  // namespace rotor
