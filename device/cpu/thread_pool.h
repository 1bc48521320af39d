#ifndef JOULE_DEVICE_CPU_THREAD_POOL_H_
#define JOULE_DEVICE_CPU_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace joule::cpu {

// Splits a loop across the cores, the caller's thread included. A decode
// step makes ~100 of these calls, so workers spin briefly between jobs
// before sleeping: waking a sleeping thread costs more than a small matvec.
class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // 0: one per core.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // Calls fn(begin, end) on contiguous parts of [0, n), one per thread,
  // and returns when all are done. Small loops run on the caller alone.
  void ParallelFor(int n, const std::function<void(int, int)>& fn,
                   int min_per_thread = 1);

 private:
  void Work(int index);

  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int, int)>* job_ = nullptr;
  int n_ = 0;
  int parts_ = 1;
  std::mutex mu_;
  std::condition_variable wake_;
};

}  // namespace joule::cpu

#endif  // JOULE_DEVICE_CPU_THREAD_POOL_H_
