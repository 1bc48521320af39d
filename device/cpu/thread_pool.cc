#include "device/cpu/thread_pool.h"

#include <immintrin.h>

#include <algorithm>

namespace joule::cpu {

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (int i = 1; i < threads; ++i)
    workers_.emplace_back([this, i] { Work(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    generation_++;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::Work(int index) {
  uint64_t seen = 0;
  while (true) {
    // Spin a little for the next job, then sleep until one comes.
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen &&
           spins < 2000) {
      _mm_pause();
      ++spins;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> l(mu_);
      wake_.wait(l, [&] { return generation_.load() != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_) return;
    if (index < parts_) {
      const int begin = static_cast<int>(int64_t{n_} * index / parts_);
      const int end = static_cast<int>(int64_t{n_} * (index + 1) / parts_);
      if (begin < end) (*job_)(begin, end);
    }
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::ParallelFor(int n, const std::function<void(int, int)>& fn,
                             int min_per_thread) {
  const int parts =
      std::min(size(), std::max(1, n / std::max(1, min_per_thread)));
  if (parts <= 1 || workers_.empty()) {
    if (n > 0) fn(0, n);
    return;
  }
  job_ = &fn;
  n_ = n;
  parts_ = parts;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_release);
  {
    std::lock_guard<std::mutex> l(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_.notify_all();
  const int end = static_cast<int>(int64_t{n} / parts);
  if (end > 0) fn(0, end);
  while (pending_.load(std::memory_order_acquire) != 0) _mm_pause();
}

}  // namespace joule::cpu
