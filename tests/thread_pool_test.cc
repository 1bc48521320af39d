#include "device/cpu/thread_pool.h"

#include <dirent.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
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

std::atomic<bool> held{false};
sem_t release;

// Keeps the thread it interrupts off the CPU until `release` is posted, as
// the kernel does when it gives the core to another thread.
void Hold(int) {
  held = true;
  while (sem_wait(&release) != 0) {
  }
}

pid_t ThreadNamed(const std::string& name) {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  pid_t found = -1;
  while (dirent* e = readdir(dir)) {
    std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string n;
    if (std::getline(comm, n) && n == name) found = std::stoi(e->d_name);
  }
  closedir(dir);
  return found;
}

// A worker that is not running between loops does not hold them up: the
// caller does its share, and the worker, once back, skips the loops it
// missed and then takes part again.
TEST(ThreadPoolTest, WorkerOffItsCoreDoesNotHoldTheLoops) {
  ThreadPool pool(2);
  pool.ParallelFor(
      2, [](int, int) {}, 1);
  // Long enough for the worker to be asleep between loops, not holding the
  // pool's mutex when the signal lands.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const pid_t worker = ThreadNamed("cpu pool 1");
  ASSERT_GT(worker, 0);
  ASSERT_EQ(sem_init(&release, 0, 0), 0);
  struct sigaction hold = {}, old = {};
  hold.sa_handler = Hold;
  ASSERT_EQ(sigaction(SIGUSR1, &hold, &old), 0);
  ASSERT_EQ(syscall(SYS_tgkill, getpid(), worker, SIGUSR1), 0);
  for (int i = 0; i < 5000 && !held; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(held);
  // Without the fix the first loop waits for the worker: let it go after
  // 3 s, so that shows as a slow loop rather than a hung test.
  std::mutex mu;
  std::condition_variable cv;
  bool loops_done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> l(mu);
    cv.wait_for(l, std::chrono::seconds(3), [&] { return loops_done; });
    sem_post(&release);
  });

  const auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < 100; ++round) {
    std::vector<std::atomic<int>> hits(64);
    pool.ParallelFor(
        64,
        [&](int b, int e) {
          for (int i = b; i < e; ++i) hits[i]++;
        },
        1);
    for (int i = 0; i < 64; ++i) ASSERT_EQ(hits[i].load(), 1) << i;
  }
  const auto took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
  EXPECT_LT(took_ms, 1000)
      << "the loops waited for a worker that never joined them";
  {
    std::lock_guard<std::mutex> l(mu);
    loops_done = true;
  }
  cv.notify_one();
  watchdog.join();

  // Back on its core, the worker joins loops again.
  const std::thread::id caller = std::this_thread::get_id();
  bool worker_ran = false;
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!worker_ran && std::chrono::steady_clock::now() < until) {
    std::atomic<bool> off_caller{false};
    std::vector<std::atomic<int>> hits(64);
    pool.ParallelFor(
        64,
        [&](int b, int e) {
          if (std::this_thread::get_id() != caller) off_caller = true;
          for (int i = b; i < e; ++i) hits[i]++;
          std::this_thread::sleep_for(std::chrono::microseconds(50));
        },
        1);
    for (int i = 0; i < 64; ++i) ASSERT_EQ(hits[i].load(), 1) << i;
    worker_ran = off_caller;
  }
  EXPECT_TRUE(worker_ran);
  sigaction(SIGUSR1, &old, nullptr);
  sem_destroy(&release);
}

}  // namespace
}  // namespace joule::cpu
