#ifndef JOULE_SERVER_WRITE_WATCHDOG_H_
#define JOULE_SERVER_WRITE_WATCHDOG_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace joule::server {

// Cancels a stream whose Write has not completed within a timeout. The
// synchronous API has no deadline on one Write, and a Write blocks once
// the client stops reading and HTTP/2 flow control fills: without this,
// such a client holds a handler thread, a concurrent-stream slot and its
// sequence until the call's own deadline, if it has one. Cancelling the
// ServerContext makes the blocked Write return false.
class WriteWatchdog {
 public:
  class Stream;

  // `timeout` must be positive.
  explicit WriteWatchdog(absl::Duration timeout);
  ~WriteWatchdog();
  WriteWatchdog(const WriteWatchdog&) = delete;
  WriteWatchdog& operator=(const WriteWatchdog&) = delete;

  // Watches the writes of one call. The Stream must be destroyed before
  // `context` is (that is, before the handler returns).
  std::unique_ptr<Stream> Watch(grpc::ServerContext* context);

  absl::Duration timeout() const { return timeout_; }

 private:
  void Run();
  void Remove(Stream* stream);

  const absl::Duration timeout_;
  absl::Mutex mu_;
  absl::flat_hash_set<Stream*> streams_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

class WriteWatchdog::Stream {
 public:
  ~Stream();
  // Brackets one Write; cheap (two atomic stores and a clock read).
  void BeginWrite();
  void EndWrite() { write_start_ns_.store(0, std::memory_order_relaxed); }
  // True once the watchdog has cancelled the call.
  bool timed_out() const { return timed_out_.load(); }

 private:
  friend class WriteWatchdog;
  Stream(WriteWatchdog* owner, grpc::ServerContext* context)
      : owner_(owner), context_(context) {}

  WriteWatchdog* const owner_;
  grpc::ServerContext* const context_;
  // steady_clock nanoseconds when the current Write began; 0: not writing.
  std::atomic<int64_t> write_start_ns_{0};
  std::atomic<bool> timed_out_{false};
};

}  // namespace joule::server

#endif  // JOULE_SERVER_WRITE_WATCHDOG_H_
