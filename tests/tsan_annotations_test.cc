// Checks tools/tsan/absl_annotations.cc: under --config=tsan, TSan must see
// absl::Mutex, CondVar and Notification as synchronisation (or every guarded
// field is reported as a race) and must still report a real race. Each
// pair of accesses is ordered only by the primitive under test: the threads
// meet through a relaxed atomic, which TSan does not count as ordering.
// In other builds the same code runs and the race test is skipped.

#include <atomic>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace {

// Runs first() on one thread and, once it has returned, second() on
// another, with no ordering between them that TSan can see.
template <typename A, typename B>
void OneAfterTheOther(A first, B second) {
  std::atomic<bool> first_done{false};
  std::thread b([&] {
    while (!first_done.load(std::memory_order_relaxed))
      std::this_thread::yield();
    second();
  });
  std::thread a([&] {
    first();
    first_done.store(true, std::memory_order_relaxed);
  });
  a.join();
  b.join();
}

TEST(TsanAnnotationsTest, MutexLockOrdersTheFieldsItGuards) {
  absl::Mutex mu;
  int guarded = 0;
  OneAfterTheOther(
      [&] {
        absl::MutexLock l(&mu);
        guarded = 1;
      },
      [&] {
        absl::MutexLock l(&mu);
        guarded = 2;
      });
  EXPECT_EQ(guarded, 2);
}

TEST(TsanAnnotationsTest, ReaderLockSeesTheWritersFields) {
  absl::Mutex mu;
  int guarded = 0;
  int seen = 0;
  OneAfterTheOther(
      [&] {
        absl::WriterMutexLock l(&mu);
        guarded = 7;
      },
      [&] {
        absl::ReaderMutexLock l(&mu);
        seen = guarded;
      });
  EXPECT_EQ(seen, 7);
}

TEST(TsanAnnotationsTest, AwaitAndCondVarOrderTheWaitersReads) {
  absl::Mutex mu;
  absl::CondVar cv;
  int value = 0;
  bool ready = false;
  bool cv_ready = false;
  std::thread waiter([&] {
    absl::MutexLock l(&mu);
    mu.Await(absl::Condition(&ready));
    EXPECT_EQ(value, 1);
    value = 2;
    cv_ready = true;
    cv.Signal();
  });
  {
    absl::MutexLock l(&mu);
    value = 1;
    ready = true;
  }
  {
    absl::MutexLock l(&mu);
    while (!cv_ready) cv.Wait(&mu);
    EXPECT_EQ(value, 2);
  }
  waiter.join();
}

TEST(TsanAnnotationsTest, NotificationPublishesWhatCameBefore) {
  absl::Notification note;
  int value = 0;
  std::thread writer([&] {
    value = 3;
    note.Notify();
  });
  ASSERT_TRUE(note.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(value, 3);
  writer.join();
}

#if defined(__SANITIZE_THREAD__)
constexpr bool kTsan = true;
#else
constexpr bool kTsan = false;
#endif

// The annotations must not hide races: the same hand-off without the lock
// is reported (TSan exits 66 with halt_on_error, as .bazelrc sets it).
void UnguardedHandOff() {
  int unguarded = 0;
  OneAfterTheOther([&] { unguarded = 1; }, [&] { unguarded = 2; });
  std::exit(unguarded == 2 ? 0 : 1);
}

TEST(TsanAnnotationsDeathTest, AnUnguardedFieldIsStillReported) {
  if (!kTsan) GTEST_SKIP() << "only meaningful under --config=tsan";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(UnguardedHandOff(), testing::ExitedWithCode(66), "data race");
}

}  // namespace
