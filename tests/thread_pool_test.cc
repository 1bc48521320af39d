#include "device/cpu/thread_pool.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace joule::cpu {
namespace {

// Every index of the loop is visited exactly once, in chunks of at least
// the grain (but the last of a share), for any loop, grain and pool size.
TEST(ThreadPoolTest, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int n : {0, 1, 2, 7, 64, 1000}) {
      for (int grain : {1, 2, 3, 16}) {
        std::vector<std::atomic<int>> hits(n);
        std::atomic<int> small_chunks{0};
        pool.ParallelFor(
            n,
            [&](int b, int e) {
              ASSERT_LT(b, e);
              if (e - b < grain) small_chunks++;
              for (int i = b; i < e; ++i) hits[i]++;
            },
            grain);
        for (int i = 0; i < n; ++i) {
          ASSERT_EQ(hits[i].load(), 1)
              << "index " << i << " n " << n << " grain " << grain
              << " threads " << threads;
        }
        // Only a share's last chunk may fall short of the grain.
        EXPECT_LE(small_chunks.load(), threads);
      }
    }
  }
}

// A thread that is held up loses the rest of its share to the others.
TEST(ThreadPoolTest, IdleThreadsStealFromSlowOnes) {
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  std::mutex mu;
  std::vector<std::pair<int, bool>> done;  // (index, ran on the caller)
  pool.ParallelFor(
      40,
      [&](int b, int e) {
        const bool on_caller = std::this_thread::get_id() == caller;
        // The worker owns [20, 40); make it slow.
        if (!on_caller)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        std::lock_guard<std::mutex> l(mu);
        for (int i = b; i < e; ++i) done.push_back({i, on_caller});
      },
      1);
  ASSERT_EQ(done.size(), 40u);
  int stolen = 0;
  for (const auto& [i, on_caller] : done) stolen += i >= 20 && on_caller;
  EXPECT_GT(stolen, 10) << "the caller should take most of the slow share";
}

// Many small loops back to back, as a decode step makes them.
TEST(ThreadPoolTest, BackToBackLoops) {
  ThreadPool pool(2);
  int64_t total = 0;
  std::vector<int64_t> sums(2);
  for (int round = 0; round < 20000; ++round) {
    std::atomic<int64_t> sum{0};
    pool.ParallelFor(
        8,
        [&](int b, int e) {
          for (int i = b; i < e; ++i) sum += i;
        },
        1);
    total += sum;
  }
  EXPECT_EQ(total, 20000 * 28);
}

}  // namespace
}  // namespace joule::cpu
