#include "server/write_watchdog.h"

#include <algorithm>
#include <chrono>

namespace joule::server {
namespace {

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

WriteWatchdog::WriteWatchdog(absl::Duration timeout)
    : timeout_(timeout), thread_([this] { Run(); }) {}

WriteWatchdog::~WriteWatchdog() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

std::unique_ptr<WriteWatchdog::Stream> WriteWatchdog::Watch(
    grpc::ServerContext* context) {
  std::unique_ptr<Stream> stream(new Stream(this, context));
  absl::MutexLock lock(&mu_);
  streams_.insert(stream.get());
  return stream;
}

void WriteWatchdog::Remove(Stream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

void WriteWatchdog::Run() {
  // Checking a few times per timeout cancels within timeout * 1.125; a
  // stuck client is not worth a timer per Write.
  const absl::Duration poll = std::clamp(timeout_ / 8, absl::Milliseconds(5),
                                         absl::Seconds(1));
  const int64_t timeout_ns = absl::ToInt64Nanoseconds(timeout_);
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), poll)) {
    const int64_t now = SteadyNanos();
    for (Stream* s : streams_) {
      const int64_t start = s->write_start_ns_.load(std::memory_order_relaxed);
      if (start == 0 || now - start < timeout_ns || s->timed_out_) continue;
      s->timed_out_ = true;
      // Under mu_: the handler cannot return (and free the context)
      // while this runs.
      s->context_->TryCancel();
    }
  }
}

WriteWatchdog::Stream::~Stream() { owner_->Remove(this); }

void WriteWatchdog::Stream::BeginWrite() {
  write_start_ns_.store(SteadyNanos(), std::memory_order_relaxed);
}

}  // namespace joule::server
