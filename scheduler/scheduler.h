#ifndef JOULE_SCHEDULER_SCHEDULER_H_
#define JOULE_SCHEDULER_SCHEDULER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "device/device.h"
#include "scheduler/device_loop.h"
#include "scheduler/generation.h"
#include "scheduler/request_queue.h"
#include "scheduler/router.h"
#include "scheduler/scheduler_options.h"
#include "scheduler/sequence.h"
#include "telemetry/energy_meter.h"

namespace joule::scheduler {

// The front desk of continuous batching across devices (after TGI's router
// and TensorFlow Serving's batch scheduler): it admits requests, routes
// each to a device's loop (DeviceLoop, which batches and steps them),
// parks those no healthy device can take, re-places the work of a failed
// device, ends waiting requests that were cancelled or expired, and shuts
// everything down.
class Scheduler {
 public:
  // Devices must have their model loaded. With options.probe_at_start the
  // constructor returns once every device has been probed (or its probe
  // has run past options.step_timeout).
  Scheduler(std::vector<std::unique_ptr<device::Device>> devices,
            SchedulerOptions options);
  // With an energy meter per device (null: none for that device).
  Scheduler(std::vector<std::unique_ptr<device::Device>> devices,
            std::vector<std::unique_ptr<telemetry::EnergyMeter>> meters,
            SchedulerOptions options);
  ~Scheduler();

  // Queues a generation. NotFound for an unknown device; Unavailable when a
  // pinned device is down or the server is shutting down;
  // ResourceExhausted when the queue is full or the request cannot fit any
  // device's KV cache.
  absl::StatusOr<std::shared_ptr<Generation>> Submit(
      GenerationRequest request, std::shared_ptr<GenerationObserver> observer);

  std::vector<DeviceStatus> Devices() const;

  // Called (from scheduler threads, no locks held) when a device turns
  // healthy or unhealthy.
  void SetHealthListener(
      std::function<void(const std::string& device, bool healthy)> listener);

  // Stops taking requests, finishes queued and running ones with
  // UNAVAILABLE, and joins the step loops. Idempotent.
  void Shutdown();

 private:
  // Places a new or moved sequence: on a device's queue, parked until a
  // device recovers, or (pinned to a device that is down) failed into
  // `done`.
  void RouteLocked(std::shared_ptr<Sequence> seq, int exclude,
                   std::vector<Done>* done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // DeviceLoop callbacks.
  void Reroute(int from, std::vector<std::shared_ptr<Sequence>> seqs);
  void OnHealthChanged(int loop, bool healthy);
  void Watchdog();
  // Waiting requests (parked or queued) that were cancelled or expired.
  std::vector<Done> TakeExpiredWaiting();
  absl::Status CheckFits(const GenerationRequest& request, int* max_gen) const;
  absl::Status CheckQueueRoom(int prompt_tokens) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SchedulerOptions options_;
  std::vector<std::unique_ptr<DeviceLoop>> loops_;  // Fixed after start.
  int max_context_ = 0;

  // Taken before any loop's own locks, never while holding one: loops call
  // back into the scheduler with no lock held.
  mutable absl::Mutex mu_;
  Router router_ ABSL_GUARDED_BY(mu_);
  // Requests no healthy device can take yet.
  RequestQueue parked_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_order_ ABSL_GUARDED_BY(mu_) = 1;
  std::function<void(const std::string&, bool)> health_listener_
      ABSL_GUARDED_BY(mu_);
  std::thread watchdog_;
};

}  // namespace joule::scheduler

#endif  // JOULE_SCHEDULER_SCHEDULER_H_
