#ifndef JOULE_DEVICE_CPU_THREAD_POOL_H_
#define JOULE_DEVICE_CPU_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace joule::cpu {

// Splits a loop across the cores, the caller's thread included. A decode
// step makes ~100 of these calls, so workers spin between jobs (and between
// steps, up to 1 ms) before sleeping: waking a sleeping thread costs more
// than a small matvec.
//
// Each thread owns a contiguous share of the loop and walks it front to
// back, so a kernel that prefetches the rows after its own keeps streaming;
// a thread that runs out steals chunks from the back of another's share.
// Cores of a shared VM do not run at equal speed, and with a fixed split
// the faster one idled for up to 8% of a batched decode step.
//
// A worker joins a job before taking any of it, and the caller waits only
// for workers that joined. A worker the kernel took off its core (for a
// gRPC thread, say) leaves its share to be stolen instead of holding the
// whole step at the end of every loop until it runs again.
class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // 0: one per core.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // Calls fn(begin, end) on disjoint parts of [0, n) that cover it, in
  // chunks of at least `grain` items (but the last), and returns when all
  // are done. Loops of fewer than 2 x grain items run on the caller alone.
  void ParallelFor(int n, const std::function<void(int, int)>& fn,
                   int grain = 1);

 private:
  // [lo, hi) of one thread's share, packed so one CAS moves either end.
  struct alignas(64) Share {
    std::atomic<uint64_t> range{0};
  };
  void Work(int index);
  void Run(int index);
  bool TakeFront(int owner, int* begin, int* end);
  bool TakeBack(int victim, int* begin, int* end);

  std::vector<std::thread> workers_;
  std::unique_ptr<Share[]> shares_;
  std::atomic<uint64_t> generation_{0};
  // The current job's generation (high 32 bits), whether it is closed to
  // new workers (kClosed) and how many joined workers are still in it.
  std::atomic<uint64_t> entry_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int, int)>* job_ = nullptr;
  int grain_ = 1;
  int parts_ = 1;
  std::mutex mu_;
  std::condition_variable wake_;
};

}  // namespace joule::cpu

#endif  // JOULE_DEVICE_CPU_THREAD_POOL_H_
