#ifndef JOULE_SCHEDULER_SCHEDULER_H_
#define JOULE_SCHEDULER_SCHEDULER_H_

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "device/device.h"
#include "scheduler/generation.h"

namespace joule::scheduler {

struct SchedulerOptions {
  // Prompt tokens per prefill step; longer prompts run in chunks.
  int max_prefill_tokens = 512;
  // Submitted requests waiting for a device, over all devices.
  int max_queued_requests = 1024;
};

struct DeviceStatus {
  device::Capabilities capabilities;
  bool healthy = true;
  int queued = 0;
  int running = 0;
  int64_t kv_used_tokens = 0;
};

// Runs generations on devices: a queue and one step loop per device. This
// first version runs one sequence at a time per device; the device API is
// already batch-shaped.
class Scheduler {
 public:
  // The devices must have their model loaded; `vocab_size` and
  // `max_context` describe that model.
  Scheduler(std::vector<std::unique_ptr<device::Device>> devices,
            SchedulerOptions options);
  ~Scheduler();

  // Queues a generation. NotFound for an unknown device; ResourceExhausted
  // when the queue is full; Unavailable after Shutdown.
  absl::StatusOr<std::shared_ptr<Generation>> Submit(
      GenerationRequest request, std::shared_ptr<GenerationObserver> observer);

  std::vector<DeviceStatus> Devices() const;

  // Stops taking requests, cancels what is queued or running, and joins the
  // step loops. Idempotent.
  void Shutdown();

 private:
  struct Work {
    GenerationRequest request;
    std::shared_ptr<GenerationObserver> observer;
    std::shared_ptr<Generation> handle;
  };
  struct Worker {
    std::unique_ptr<device::Device> device;
    device::Capabilities caps;
    std::deque<Work> queue;               // Guarded by Scheduler::mu_.
    int running = 0;                      // Guarded by Scheduler::mu_.
    std::shared_ptr<Generation> current;  // Guarded by Scheduler::mu_.
    std::thread thread;
  };

  void Loop(Worker* worker);
  void Run(Worker* worker, Work& work);

  SchedulerOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  mutable absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Read by step loops between steps without taking mu_.
  std::atomic<bool> stopping_{false};
  int queued_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace joule::scheduler

#endif  // JOULE_SCHEDULER_SCHEDULER_H_
