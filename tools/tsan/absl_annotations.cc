// ThreadSanitizer annotations for Debian's uninstrumented Abseil.
//
// Debian builds libabsl_synchronization without -fsanitize=thread, so TSan
// never sees an absl::Mutex being taken or released and reports every field
// it guards as a race. Under --config=tsan only, the linker redirects this
// program's calls into Abseil (-Wl,--wrap, see BUILD) to the __wrap_ functions
// below. Each calls the real one and tells TSan what it did, with the same
// annotations Abseil itself makes when it is built with TSan (mutex.cc's
// ABSL_TSAN_MUTEX_* macros): memory accesses inside the real call, including
// Condition functions Abseil evaluates for a waiter, are ignored, and the
// lock's release and acquire become happens-before edges.
//
// Only calls from instrumented code are wrapped; Abseil's calls to itself and
// gRPC's locks stay invisible, which is harmless for race detection in this
// program's code: they order nothing it shares.

#include <sanitizer/tsan_interface.h>

#include <string_view>

#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

#define JOULE_STR2(x) #x
#define JOULE_STR(x) JOULE_STR2(x)
// The wrapped names (BUILD) are mangled with Abseil's inline namespace.
static_assert(std::string_view(JOULE_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME)) ==
                  "debian3",
              "Abseil's inline namespace changed: update the mangled names in "
              "tools/tsan/absl_annotations.cc and tools/tsan/BUILD");

namespace {

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

constexpr unsigned kRead = __tsan_mutex_read_lock;

void PreLock(Mutex* mu, unsigned flags) { __tsan_mutex_pre_lock(mu, flags); }
void PostLock(Mutex* mu, unsigned flags) {
  __tsan_mutex_post_lock(mu, flags, 0);
}
void PreUnlock(Mutex* mu, unsigned flags) {
  __tsan_mutex_pre_unlock(mu, flags);
}
void PostUnlock(Mutex* mu, unsigned flags) {
  __tsan_mutex_post_unlock(mu, flags);
}

// Await and CondVar::Wait release the lock and take it again; the accesses
// in between (the condition, other threads' critical sections) are ordered by
// the unlock's release and the relock's acquire.
template <typename F>
auto ReleaseAndReacquire(Mutex* mu, unsigned flags, F real) {
  PreUnlock(mu, flags);
  auto result = real();
  PostUnlock(mu, flags);
  PreLock(mu, flags);
  PostLock(mu, flags);
  return result;
}

template <typename F>
bool TimedLock(Mutex* mu, unsigned flags, F real) {
  PreLock(mu, flags);
  bool result = real();  // Holds the lock whether or not the condition held.
  PostLock(mu, flags);
  return result;
}

// Debian's Abseil checks lock order in a graph it updates with memmove, which
// TSan intercepts even inside the uninstrumented library, so the graph itself
// shows up as racing. TSan has its own lock-order checker (detect_deadlocks).
const bool kAbseilDeadlockCheckOff = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

}  // namespace

// Mangled names of the real functions, as Debian's libabsl exports them.
#define MU(name) _ZN4absl7debian35Mutex##name
#define CV(name) _ZN4absl7debian37CondVar##name
#define NOTE(name) _ZN4absl7debian312Notification##name
#define NOTEK(name) _ZNK4absl7debian312Notification##name
#define CAT(a, b) a##b
#define REAL_OF(sym) CAT(__real_, sym)
#define WRAP_OF(sym) CAT(__wrap_, sym)

// Declares the real function and defines its wrapper.
#define WRAPPER(sym, ret, params)     \
  extern "C" ret REAL_OF(sym) params; \
  extern "C" ret WRAP_OF(sym)         \
  params

WRAPPER(MU(4LockEv), void, (Mutex * mu)) {
  PreLock(mu, 0);
  REAL_OF(MU(4LockEv))(mu);
  PostLock(mu, 0);
}

WRAPPER(MU(6UnlockEv), void, (Mutex * mu)) {
  PreUnlock(mu, 0);
  REAL_OF(MU(6UnlockEv))(mu);
  PostUnlock(mu, 0);
}

WRAPPER(MU(7TryLockEv), bool, (Mutex * mu)) {
  __tsan_mutex_pre_lock(mu, __tsan_mutex_try_lock);
  bool locked = REAL_OF(MU(7TryLockEv))(mu);
  __tsan_mutex_post_lock(
      mu, __tsan_mutex_try_lock | (locked ? 0 : __tsan_mutex_try_lock_failed),
      0);
  return locked;
}

WRAPPER(MU(10ReaderLockEv), void, (Mutex * mu)) {
  PreLock(mu, kRead);
  REAL_OF(MU(10ReaderLockEv))(mu);
  PostLock(mu, kRead);
}

WRAPPER(MU(12ReaderUnlockEv), void, (Mutex * mu)) {
  PreUnlock(mu, kRead);
  REAL_OF(MU(12ReaderUnlockEv))(mu);
  PostUnlock(mu, kRead);
}

WRAPPER(MU(13ReaderTryLockEv), bool, (Mutex * mu)) {
  unsigned flags = kRead | __tsan_mutex_try_lock;
  __tsan_mutex_pre_lock(mu, flags);
  bool locked = REAL_OF(MU(13ReaderTryLockEv))(mu);
  __tsan_mutex_post_lock(
      mu, flags | (locked ? 0 : __tsan_mutex_try_lock_failed), 0);
  return locked;
}

WRAPPER(MU(8LockWhenERKNS0_9ConditionE), void,
        (Mutex * mu, const Condition& cond)) {
  PreLock(mu, 0);
  REAL_OF(MU(8LockWhenERKNS0_9ConditionE))(mu, cond);
  PostLock(mu, 0);
}

WRAPPER(MU(14ReaderLockWhenERKNS0_9ConditionE), void,
        (Mutex * mu, const Condition& cond)) {
  PreLock(mu, kRead);
  REAL_OF(MU(14ReaderLockWhenERKNS0_9ConditionE))(mu, cond);
  PostLock(mu, kRead);
}

WRAPPER(MU(19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE), bool,
        (Mutex * mu, const Condition& cond, Duration timeout)) {
  return TimedLock(mu, 0, [&] {
    return REAL_OF(MU(19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE))(
        mu, cond, timeout);
  });
}

WRAPPER(MU(20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE), bool,
        (Mutex * mu, const Condition& cond, Time deadline)) {
  return TimedLock(mu, 0, [&] {
    return REAL_OF(MU(20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE))(
        mu, cond, deadline);
  });
}

WRAPPER(MU(5AwaitERKNS0_9ConditionE), void,
        (Mutex * mu, const Condition& cond)) {
  ReleaseAndReacquire(mu, 0, [&] {
    REAL_OF(MU(5AwaitERKNS0_9ConditionE))(mu, cond);
    return 0;
  });
}

WRAPPER(MU(16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE), bool,
        (Mutex * mu, const Condition& cond, Duration timeout)) {
  return ReleaseAndReacquire(mu, 0, [&] {
    return REAL_OF(MU(16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE))(
        mu, cond, timeout);
  });
}

WRAPPER(MU(17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE), bool,
        (Mutex * mu, const Condition& cond, Time deadline)) {
  return ReleaseAndReacquire(mu, 0, [&] {
    return REAL_OF(MU(17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE))(
        mu, cond, deadline);
  });
}

WRAPPER(MU(D1Ev), void, (Mutex * mu)) {
  __tsan_mutex_destroy(mu, 0);
  REAL_OF(MU(D1Ev))(mu);
}

WRAPPER(MU(D2Ev), void, (Mutex * mu)) {
  __tsan_mutex_destroy(mu, 0);
  REAL_OF(MU(D2Ev))(mu);
}

WRAPPER(CV(4WaitEPNS0_5MutexE), void, (CondVar * cv, Mutex* mu)) {
  ReleaseAndReacquire(mu, 0, [&] {
    REAL_OF(CV(4WaitEPNS0_5MutexE))(cv, mu);
    return 0;
  });
}

WRAPPER(CV(15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE), bool,
        (CondVar * cv, Mutex* mu, Duration timeout)) {
  return ReleaseAndReacquire(mu, 0, [&] {
    return REAL_OF(CV(15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE))(cv, mu,
                                                                     timeout);
  });
}

WRAPPER(CV(16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE), bool,
        (CondVar * cv, Mutex* mu, Time deadline)) {
  return ReleaseAndReacquire(mu, 0, [&] {
    return REAL_OF(CV(16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE))(cv, mu,
                                                                  deadline);
  });
}

// A Notification's flag is set and read inside Abseil; Notify publishes
// everything before it to whoever sees the notification.
WRAPPER(NOTE(6NotifyEv), void, (Notification * n)) {
  __tsan_release(n);
  REAL_OF(NOTE(6NotifyEv))(n);
}

WRAPPER(NOTEK(19WaitForNotificationEv), void, (const Notification* n)) {
  REAL_OF(NOTEK(19WaitForNotificationEv))(n);
  __tsan_acquire(const_cast<Notification*>(n));
}

WRAPPER(NOTEK(30WaitForNotificationWithTimeoutENS0_8DurationE), bool,
        (const Notification* n, Duration timeout)) {
  bool notified = REAL_OF(
      NOTEK(30WaitForNotificationWithTimeoutENS0_8DurationE))(n, timeout);
  if (notified) __tsan_acquire(const_cast<Notification*>(n));
  return notified;
}

WRAPPER(NOTEK(31WaitForNotificationWithDeadlineENS0_4TimeE), bool,
        (const Notification* n, Time deadline)) {
  bool notified =
      REAL_OF(NOTEK(31WaitForNotificationWithDeadlineENS0_4TimeE))(n, deadline);
  if (notified) __tsan_acquire(const_cast<Notification*>(n));
  return notified;
}
