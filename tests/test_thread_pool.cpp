// The thread pool: every task runs once, on a worker of its own, through nested and serial
// calls, resizes and exceptions; parallel_items runs every item once and moves a stalled
// worker's items to the others; and what runs on it (quantized linears, alone and sharing an
// input, attention) gives bit for bit the floats of one thread.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/import/load_model.h"
#include "engine/kernels/pack.h"
#include "engine/quantized_linear.h"
#include "engine/session.h"
#include "engine/threads.h"
#include "engine/parallel_items.h"
#include "tests/helpers.h"

using namespace rotor;

namespace {

// Counts how often each task ran and checks its worker index.
void check_each_task_once(ThreadPool& pool, int n_tasks) {
  std::vector<std::atomic<int>> runs(n_tasks);
  std::atomic<int> bad_worker{0};
  pool.parallel_for(n_tasks, [&](int task, int worker) {
    runs[task].fetch_add(1);
    if (worker < 0 || worker >= pool.size()) bad_worker.fetch_add(1);
  });
  int wrong = 0;
  for (auto& r : runs) wrong += r.load() != 1;
  CHECK(wrong == 0);
  CHECK(bad_worker.load() == 0);
}

// The global pool at n workers for one scope.
struct GlobalPoolSize {
  int saved = thread_pool().size();
  explicit GlobalPoolSize(int n) { thread_pool().resize(n); }
  ~GlobalPoolSize() { thread_pool().resize(saved); }
};

// A random W{bits} matrix [rows, cols] with per-group scales and zero points.
struct RandomPacked {
  std::vector<uint8_t> codes;
  std::vector<float> scales;
  std::vector<int32_t> zeros, sums;
  PackedMatrix m;

  RandomPacked(int rows, int cols, int bits, int group, std::mt19937& rng) {
    const int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
    std::uniform_int_distribution<int> code(lo, hi);
    std::vector<int8_t> signed_codes(static_cast<size_t>(rows) * cols);
    for (auto& c : signed_codes) c = static_cast<int8_t>(code(rng));
    codes.resize(rows * packed_row_bytes(cols, bits));
    pack_weight_codes(signed_codes.data(), rows, cols, bits, codes.data());
    scales.resize(static_cast<size_t>(rows) * (cols / group));
    zeros.resize(scales.size());
    std::uniform_real_distribution<float> scale(0.001f, 0.1f);
    for (size_t i = 0; i < scales.size(); ++i) {
      scales[i] = scale(rng);
      zeros[i] = code(rng);
    }
    sums.resize(static_cast<size_t>(rows) * (cols / group));
    weight_block_sums(signed_codes.data(), rows, cols, group, sums.data());
    m.rows = rows;
    m.cols = m.cols_padded = cols;
    m.bits = bits;
    m.group = m.block = group;
    m.codes = codes.data();
    m.scales = scales.data();
    m.zeros = zeros.data();
    m.sums = sums.data();
  }
};

}  // namespace

TEST_CASE("thread pool: every task runs exactly once, on a worker in range") {
  for (int size : {1, 2, 3, 5}) {
    CAPTURE(size);
    ThreadPool pool(size);
    CHECK(pool.size() == size);
    for (int n : {0, 1, 2, 3, 7, 64, 1000}) {
      CAPTURE(n);
      check_each_task_once(pool, n);
    }
  }
}

TEST_CASE("thread pool: the workers run tasks at the same time") {
  ThreadPool pool(2);
  // Each task waits for the other: only two threads at once can finish both.
  std::atomic<int> arrived{0};
  std::atomic<bool> timed_out{false};
  std::vector<int> worker_of(2, -1);
  pool.parallel_for(2, [&](int task, int worker) {
    worker_of[task] = worker;
    arrived.fetch_add(1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (arrived.load() < 2)
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        return;
      }
  });
  CHECK_FALSE(timed_out.load());
  CHECK(worker_of[0] != worker_of[1]);
}

TEST_CASE("thread pool: many calls in a row, with pauses long enough for the threads to sleep") {
  ThreadPool pool(3);
  for (int call = 0; call < 2000; ++call) {
    check_each_task_once(pool, 1 + call % 9);
    if (call % 500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

TEST_CASE("thread pool: a call from inside a task runs inline on that task's worker") {
  ThreadPool pool(3);
  std::atomic<int> inner_runs{0}, mismatched{0};
  pool.parallel_for(6, [&](int, int outer) {
    pool.parallel_for(5, [&](int, int inner) {
      inner_runs.fetch_add(1);
      if (inner != outer) mismatched.fetch_add(1);
    });
  });
  CHECK(inner_runs.load() == 30);
  CHECK(mismatched.load() == 0);
}

TEST_CASE("thread pool: two outside threads may call at once") {
  ThreadPool pool(2);
  std::atomic<int> total{0};
  auto caller = [&] {
    for (int i = 0; i < 200; ++i) pool.parallel_for(10, [&](int, int) { total.fetch_add(1); });
  };
  std::thread other(caller);
  caller();
  other.join();
  CHECK(total.load() == 2 * 200 * 10);
}

TEST_CASE("thread pool: resizing keeps it working") {
  ThreadPool pool(1);
  for (int size : {3, 2, 1, 4, 4, 2}) {
    pool.resize(size);
    CHECK(pool.size() == size);
    check_each_task_once(pool, 50);
  }
  CHECK_THROWS_AS(pool.resize(0), std::invalid_argument);
  CHECK(pool.size() == 2);
  check_each_task_once(pool, 50);
  CHECK_THROWS_AS(ThreadPool(0), std::invalid_argument);
  // From inside a task it would wait for itself: refused.
  CHECK_THROWS_AS(pool.parallel_for(2, [&](int, int) { pool.resize(3); }), std::logic_error);
  CHECK(pool.size() == 2);
}

TEST_CASE("thread pool: an exception in a task reaches the caller and the pool goes on") {
  for (int size : {1, 2, 4}) {
    CAPTURE(size);
    ThreadPool pool(size);
    std::atomic<int> ran{0};
    CHECK_THROWS_WITH_AS(pool.parallel_for(100,
                                           [&](int task, int) {
                                             ran.fetch_add(1);
                                             if (task == 5) throw std::runtime_error("task 5");
                                           }),
                         "task 5", std::runtime_error);
    CHECK(ran.load() <= 100);
    // Every task throwing: one of them arrives, nothing hangs.
    CHECK_THROWS_AS(pool.parallel_for(50, [](int, int) { throw std::out_of_range("x"); }),
                    std::out_of_range);
    check_each_task_once(pool, 100);
  }
}

TEST_CASE("parallel_items: every item runs once, on a worker in range, for any pool and count") {
  for (int size : {1, 2, 3, 4}) {
    ThreadPool pool(size);
    for (int n : {0, 1, 2, 3, 7, 64, 1001}) {
      CAPTURE(size); CAPTURE(n);
      std::vector<std::atomic<int>> runs(n);
      std::atomic<int> bad_worker{0};
      parallel_items(pool, n, [&](int item, int worker) {
        runs[item].fetch_add(1);
        if (worker < 0 || worker >= size) bad_worker.fetch_add(1);
      });
      int wrong = 0;
      for (auto& r : runs) wrong += r.load() != 1;
      CHECK(wrong == 0);
      CHECK(bad_worker.load() == 0);
    }
  }
}

TEST_CASE("parallel_items: a stalled worker's items go to the others") {
  // The first item to start waits until every other item has run: only if the other workers
  // take the rest of its worker's share too, from the back, does that happen (else it times out).
  for (int size : {2, 3}) {
    CAPTURE(size);
    ThreadPool pool(size);
    const int n = 40;
    std::atomic<int> started{0}, finished{0};
    std::atomic<bool> timed_out{false};
    std::vector<std::atomic<int>> runs(n);
    parallel_items(pool, n, [&](int item, int) {
      if (started.fetch_add(1) == 0) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (finished.load() < n - 1 && !timed_out.load())
          if (std::chrono::steady_clock::now() > deadline) timed_out = true;
      }
      runs[item].fetch_add(1);
      finished.fetch_add(1);
    });
    CHECK_FALSE(timed_out.load());
    int wrong = 0;
    for (auto& r : runs) wrong += r.load() != 1;
    CHECK(wrong == 0);
  }
}

TEST_CASE("parallel_items: from inside a task it runs every item inline on that task's worker") {
  ThreadPool pool(3);
  std::atomic<int> inner_runs{0}, mismatched{0};
  pool.parallel_for(4, [&](int, int outer) {
    parallel_items(pool, 9, [&](int, int inner) {
      inner_runs.fetch_add(1);
      if (inner != outer) mismatched.fetch_add(1);
    });
  });
  CHECK(inner_runs.load() == 4 * 9);
  CHECK(mismatched.load() == 0);
}

TEST_CASE("default_thread_count: at least one, at most the CPUs this process may use") {
  const int n = default_thread_count();
  CHECK(n >= 1);
  CHECK(n <= static_cast<int>(std::thread::hardware_concurrency()));
}

TEST_CASE("quantized linear: every thread count gives the floats of one thread, bit for bit") {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // Rows not a multiple of the row tiles (64 rows with several tokens, 256 in decode) or of the
  // chunks; small layers stay on one thread.
  struct Shape { int rows, cols, bits, group; };
  const Shape shapes[] = {{64, 64, 4, 64},    {100, 4096, 4, 128}, {1000, 512, 4, 64},
                          {333, 1024, 8, 128}, {2048, 256, 4, 256}};
  for (const Shape& s : shapes)
    for (int act_bits : {4, 8, 16})
      for (int tokens : {1, 7, 64}) {
        CAPTURE(s.rows); CAPTURE(s.cols); CAPTURE(s.bits); CAPTURE(act_bits); CAPTURE(tokens);
        RandomPacked w(s.rows, s.cols, s.bits, s.group, rng);
        ActQuantParams act;
        act.bits = act_bits;
        const QuantizedLinear linear(w.m, act);
        std::vector<float> x(static_cast<size_t>(tokens) * s.cols);
        for (float& v : x) v = normal(rng);
        const size_t n_out = static_cast<size_t>(tokens) * s.rows;
        std::vector<float> want(n_out, -1.0f);
        {
          GlobalPoolSize one(1);
          linear.forward(x.data(), tokens, want.data());
        }
        for (int threads : {2, 3}) {
          CAPTURE(threads);
          GlobalPoolSize many(threads);
          std::vector<float> got(n_out, -2.0f);
          linear.forward(x.data(), tokens, got.data());
          CHECK(got == want);
        }
      }
}

TEST_CASE("quantized linear: a token decoded alone gives the floats it gets among several") {
  // 4-bit weights and activations in per-head blocks: decode goes through centered_dots where
  // the kernels have it, several tokens through block_dots and the weights' block sums; each
  // token's floats must not depend on which. Heads of 64 and 128, rows past the decode tiles.
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  struct Shape { int rows, cols, head; };
  for (const Shape& s : {Shape{300, 512, 64}, Shape{600, 1024, 128}, Shape{257, 2048, 64}}) {
    CAPTURE(s.rows); CAPTURE(s.cols); CAPTURE(s.head);
    RandomPacked w(s.rows, s.cols, 4, s.head, rng);
    const QuantizedLinear linear(w.m, ActQuantParams{4, s.head, 0, 1.0f, 1.0f});
    const int tokens = 3;
    std::vector<float> x(static_cast<size_t>(tokens) * s.cols);
    for (float& v : x) v = normal(rng);
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      GlobalPoolSize size(threads);
      std::vector<float> all(static_cast<size_t>(tokens) * s.rows, -1.0f), one(s.rows);
      linear.forward(x.data(), tokens, all.data());
      for (int t = 0; t < tokens; ++t) {
        CAPTURE(t);
        std::fill(one.begin(), one.end(), -2.0f);
        linear.forward(&x[static_cast<size_t>(t) * s.cols], 1, one.data());
        CHECK(std::equal(one.begin(), one.end(), all.begin() + static_cast<size_t>(t) * s.rows));
      }
    }
  }
}

TEST_CASE("forward_shared: the floats of separate forwards, bit for bit, shared or not") {
  std::mt19937 rng(8);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // q/k/v-like layers of one input: 10 + 1 + 3 row tiles of 64 rows (several tokens), so with
  // two workers a chunk ends inside the first layer and the other spans all three; in decode
  // 3 + 1 + 1 tiles of 256 rows, the second worker's share starting inside the first layer. At
  // 256 columns the group stays on the calling thread; at 1024 it is split (while k alone
  // would not be).
  for (int cols : {256, 1024}) {
    std::vector<RandomPacked> packed;
    for (int out : {600, 64, 130}) packed.emplace_back(out, cols, 4, 64, rng);
    std::vector<float> f32_weights(static_cast<size_t>(64) * cols);
    for (float& v : f32_weights) v = normal(rng);
    const LinearF32 f32(f32_weights.data(), 64, cols);
    for (int act_bits : {4, 8})
      for (int tokens : {1, 5}) {
        CAPTURE(cols); CAPTURE(act_bits); CAPTURE(tokens);
        ActQuantParams act{act_bits, cols / 2, 0, 0.9f, 0.95f};  // two segments, own clips
        act.segment_clips = {{0.8f, 0.85f}, {0.7f, 1.0f}};
        ActQuantParams other_clip = act, float_act = act;
        other_clip.segment_clips[1].max = 0.9f;
        float_act.bits = 16;
        auto layers = [&](const ActQuantParams& k_act) {
          std::vector<std::unique_ptr<Linear>> l;
          l.push_back(std::make_unique<QuantizedLinear>(packed[0].m, act));
          l.push_back(std::make_unique<QuantizedLinear>(packed[1].m, k_act));
          l.push_back(std::make_unique<QuantizedLinear>(packed[2].m, act));
          return l;
        };
        // Shared; then the fallbacks: k's clips differ, k has float activations.
        for (const ActQuantParams* k_act : {&act, &other_clip, &float_act}) {
          const auto owned = layers(*k_act);
          std::vector<const Linear*> group = {owned[0].get(), owned[1].get(), owned[2].get()};
          if (k_act == &float_act) group.push_back(&f32);  // and a float layer too
          std::vector<float> x(static_cast<size_t>(tokens) * cols);
          for (float& v : x) v = normal(rng);
          const bool shared = k_act == &act;
          for (int threads : {1, 2}) {
            CAPTURE(threads); CAPTURE(shared);
            GlobalPoolSize size(threads);
            std::vector<std::vector<float>> want, got;
            for (const Linear* l : group) {
              want.emplace_back(static_cast<size_t>(tokens) * l->out_features(), -1.0f);
              got.emplace_back(want.back().size(), -2.0f);
              l->forward(x.data(), tokens, want.back().data());
            }
            std::vector<float*> ys;
            for (std::vector<float>& y : got) ys.push_back(y.data());
            forward_shared(group.data(), static_cast<int>(group.size()), x.data(), tokens,
                           ys.data());
            for (size_t i = 0; i < group.size(); ++i) CHECK(got[i] == want[i]);
          }
        }
      }
  }
}

TEST_CASE("session: attention across threads gives the logits of one thread, bit for bit") {
  auto model = load_model(test::llama2c_path("stories260K"));
  const std::vector<int> prompt = {1, 403, 407, 261, 378, 426, 282, 290, 264, 341, 304, 281};
  auto logits = [&](int threads) {
    GlobalPoolSize size(threads);
    Session session(*model);
    std::vector<float> all;
    session.prefill(prompt, &all);
    const int V = model->config.vocab_size;
    for (int token : {300, 301, 302}) {
      const float* l = session.decode(token);
      all.insert(all.end(), l, l + V);
    }
    return all;
  };
  const std::vector<float> one = logits(1);
  CHECK(logits(2) == one);
  CHECK(logits(3) == one);
}
