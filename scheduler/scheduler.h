#ifndef JOULE_SCHEDULER_SCHEDULER_H_
#define JOULE_SCHEDULER_SCHEDULER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "device/device.h"
#include "scheduler/generation.h"
#include "scheduler/kv_block_manager.h"
#include "scheduler/request_queue.h"
#include "scheduler/router.h"
#include "scheduler/sequence.h"
#include "scheduler/step_planner.h"
#include "telemetry/energy_meter.h"
#include "telemetry/metrics.h"

namespace joule::scheduler {

struct SchedulerOptions {
  // Admission control: requests waiting for a device, and the prompt tokens
  // they hold. Past either, Submit fails at once with RESOURCE_EXHAUSTED.
  int max_queued_requests = 1024;
  int64_t max_queued_tokens = 1 << 20;
  // Per device (also capped by the device's own max batch size).
  int max_batch_size = 64;
  // Tokens one step may compute; longer prompts prefill in chunks so they
  // do not stall running decodes.
  int max_step_tokens = 512;
  int kv_block_size = 16;
  RoutingPolicy routing = RoutingPolicy::kLatency;
  // A device step running longer than this is hung: the device is marked
  // unhealthy and its sequences move.
  absl::Duration step_timeout = absl::Seconds(60);
  // Re-probing an unhealthy device: first wait, doubling up to the max.
  absl::Duration probe_backoff = absl::Milliseconds(100);
  absl::Duration max_probe_backoff = absl::Seconds(10);
  // One priority level is worth this much waiting.
  absl::Duration priority_step = absl::Seconds(1);
  // FLOPs to compute one token at a position, for splitting a step's
  // energy by work. Unset: every token counts the same.
  std::function<double(int position)> flops_at;
  // Where step and token metrics go; may be null.
  telemetry::Metrics* metrics = nullptr;
};

struct DeviceStatus {
  device::Capabilities capabilities;
  bool healthy = true;
  std::string last_error;
  int queued = 0;
  int running = 0;
  double kv_usage = 0;  // Share of KV blocks in use.
  int64_t steps = 0;
  double device_seconds = 0;     // Inside device calls.
  double scheduler_seconds = 0;  // The step loop's own work around them.
  double seconds_per_step = -1;  // Running average; -1 while unknown.
  device::EnergySource energy_source = device::EnergySource::kNone;
  std::string energy_description;
  double total_joules = 0;  // Since start, idle included where known.
};

// Continuous batching across devices (after TGI's router and vLLM's
// scheduler): a queue per device, and a step loop per device that every
// iteration retires finished work, admits waiting sequences that fit,
// prefills them in budgeted chunks and decodes every running sequence in
// one batched call. A router places requests; a failed or hung device's
// sequences move to healthy devices and recompute their cache there.
class Scheduler {
 public:
  // Devices must have their model loaded. `max_context` is the model's.
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
  // healthy or unhealthy. Set before traffic.
  void SetHealthListener(
      std::function<void(const std::string& device, bool healthy)> listener);

  // Stops taking requests, finishes queued and running ones with
  // UNAVAILABLE, and joins the step loops. Idempotent.
  void Shutdown();

 private:
  struct Loop;
  struct Done {
    std::shared_ptr<Sequence> seq;
    FinishReason reason;
    absl::Status status;
  };

  void Run(Loop* loop);
  void Iterate(Loop* loop);
  void Probe(Loop* loop);
  void Watchdog();
  // Moves all of `loop`'s running and queued sequences elsewhere and marks
  // it unhealthy. Requires loop->step_mu.
  void FailLoop(Loop* loop, const absl::Status& why, std::vector<Done>* done);
  void RouteLocked(std::shared_ptr<Sequence> seq, std::vector<Done>* done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<DeviceLoad> LoadsLocked() const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs one device call with its meter; the step's joules, if known.
  std::optional<double> Metered(Loop* loop, bool prefill, absl::Status* status);
  // Adds `joules` (or its absence) to the sequences of a call, by FLOPs.
  void Attribute(std::optional<double> joules,
                 const std::vector<Sequence*>& seqs,
                 const std::vector<double>& work);
  // Samples the next token from `logits` and streams it; true if the
  // sequence is finished (then added to `done`).
  bool Emit(Loop* loop, Sequence& seq, absl::Span<float> logits,
            std::vector<Done>* done);
  void Finish(std::vector<Done>& done);
  void NotifyHealth(const std::string& device, bool healthy);

  const SchedulerOptions options_;
  std::vector<std::unique_ptr<Loop>> loops_;
  int max_context_ = 0;
  std::function<void(const std::string&, bool)> health_listener_;

  mutable absl::Mutex mu_;
  Router router_ ABSL_GUARDED_BY(mu_);
  // Requests no healthy device can take yet.
  RequestQueue parked_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::thread watchdog_;
};

}  // namespace joule::scheduler

#endif  // JOULE_SCHEDULER_SCHEDULER_H_
