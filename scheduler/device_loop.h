#ifndef JOULE_SCHEDULER_DEVICE_LOOP_H_
#define JOULE_SCHEDULER_DEVICE_LOOP_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "device/device.h"
#include "scheduler/cost_tracker.h"
#include "scheduler/emit.h"
#include "scheduler/kv_block_manager.h"
#include "scheduler/request_queue.h"
#include "scheduler/router.h"
#include "scheduler/scheduler_options.h"
#include "scheduler/sequence.h"
#include "scheduler/step_planner.h"
#include "telemetry/energy_meter.h"

namespace joule::scheduler {

// One device's share of continuous batching (after TGI's backend): its
// queue, its running sequences and the thread that steps them. Every step
// reads as its phases: retire what was cancelled or expired, admit what
// fits, plan the step's chunks, build the device's inputs, run the one
// device call, and commit (attribute energy and time, sample, emit).
// A device that fails hands its sequences back to the front desk
// (Scheduler) through `reroute` and is probed with backoff until it works.
class DeviceLoop {
 public:
  // Called from the loop's thread, or the watchdog's, with no loop lock
  // held.
  struct Callbacks {
    // Sequences the loop gave up (its device failed or hung): place them
    // elsewhere; their caches are gone, so they recompute.
    std::function<void(std::vector<std::shared_ptr<Sequence>>)> reroute;
    // The device turned unhealthy (false) or a probe found it working again
    // (true).
    std::function<void(bool healthy)> health_changed;
  };

  DeviceLoop(std::unique_ptr<device::Device> device,
             std::unique_ptr<telemetry::EnergyMeter> meter,
             const SchedulerOptions& options, Callbacks callbacks);
  ~DeviceLoop();

  // Starts the thread. With options.probe_at_start it first probes the
  // device; WaitUntilProbed returns once that probe has ended.
  void Start();
  void WaitUntilProbed(absl::Duration timeout);

  const device::Capabilities& caps() const { return caps_; }
  // Positions the device's whole KV cache holds, in whole blocks.
  int64_t kv_capacity() const { return kv_capacity_; }

  // The front desk's calls, from any thread.
  void Enqueue(std::shared_ptr<Sequence> seq);
  DeviceLoad Load() const;
  DeviceStatus Status() const;
  // Prompt tokens its queue holds (admission control).
  int64_t queued_tokens() const;
  bool healthy() const;
  std::string last_error() const;
  // Takes the queued sequences that were cancelled or ran out of time.
  std::vector<std::shared_ptr<Sequence>> TakeExpired(absl::Time now);
  // The watchdog's check: a step (or probe) running longer than `timeout`
  // fails the device, as a failed step would.
  void FailIfHung(absl::Duration timeout);

  // Stops taking work and returns what is still queued; the thread ends its
  // running sequences with UNAVAILABLE and exits.
  std::vector<std::shared_ptr<Sequence>> Stop();
  // Joins the thread. A device call hung for `timeout` cannot be joined:
  // then the thread is left behind and false returned; the caller must
  // leak this loop, which the thread still uses if its call ever returns.
  bool JoinOrAbandon(absl::Duration timeout);

 private:
  // What the device call of a step produced.
  struct StepResult {
    absl::Status status;
    absl::Duration wall;
    std::optional<double> joules;  // Unset: the step had no energy figure.
  };

  void Run();
  // Waits for work; false once stopped.
  bool WaitForWork();
  void Iterate();

  // The phases of a step, in order; each requires step_mu_.
  void Retire(absl::Time now, std::vector<Done>* done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  void Admit(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  StepPlan Plan() ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  void BuildInputs(const StepPlan& plan)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  // The device call itself, under the meter; without locks.
  StepResult RunDevice(absl::Span<const device::SequenceChunk> batch);
  void Commit(const StepPlan& plan, const StepResult& result,
              std::vector<Done>* done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);

  // Commit's parts.
  // A step's work (FLOPs) per chunk in batch order, and per phase.
  struct StepWork {
    std::vector<Sequence*> seqs;
    std::vector<double> work;
    struct {
      int64_t tokens = 0;
      double work = 0;
      std::optional<double> joules;  // Unset: the step had no figure.
    } phase[2];                      // Prefill, decode.
  };
  StepWork WorkOf(const StepPlan& plan) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  // Adds each chunk's share of the step's energy to its sequence, then
  // records the step's costs.
  void Attribute(const StepPlan& plan, const StepResult& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  // The step's time and energy per phase, into the cost tracker and
  // metrics.
  void RecordCosts(const StepPlan& plan, const StepWork& w);
  // Advances each chunk's cache and emits a token for every sequence whose
  // context is now all cached.
  void Emit(const StepPlan& plan, std::vector<Done>* done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  void RecordStep(const StepResult& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);

  // Marks the device unhealthy and takes every running and queued
  // sequence; the caller hands them to `reroute`. `was_healthy` says
  // whether this is news.
  std::vector<std::shared_ptr<Sequence>> FailLocked(const absl::Status& why,
                                                    bool* was_healthy)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu_);
  void HandOff(std::vector<std::shared_ptr<Sequence>> moved, bool was_healthy);
  // Waits out the backoff, then runs a probe; on success the device is
  // healthy again.
  void Reprobe();
  // A short prompt and one decode under the meter, as a request runs:
  // proves the device works and prices both phases.
  absl::Status Probe();
  absl::Status ProbeStep(absl::Span<const device::SequenceChunk> batch,
                         Phase phase);
  // Ends the running sequences at shutdown.
  void EndRunning();

  const std::unique_ptr<device::Device> device_;
  const device::Capabilities caps_;
  const std::unique_ptr<telemetry::EnergyMeter> meter_;  // May be null.
  const SchedulerOptions options_;
  const Callbacks callbacks_;
  const EmitSite site_;
  StepLimits limits_;  // Set in the constructor, then read-only.
  int64_t kv_capacity_ = 0;
  CostTracker costs_;  // Thread-safe.
  absl::Notification probed_;

  // The front desk's side.
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(step_mu_);
  RequestQueue queue_ ABSL_GUARDED_BY(mu_);
  bool healthy_ ABSL_GUARDED_BY(mu_) = true;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);

  // Held by the loop thread except inside device calls, so the watchdog
  // can take the sequences of a hung step.
  mutable absl::Mutex step_mu_;
  KvBlockManager kv_ ABSL_GUARDED_BY(step_mu_);
  std::vector<std::shared_ptr<Sequence>> running_ ABSL_GUARDED_BY(step_mu_);
  // Bumped when the watchdog takes the running sequences: the step in
  // flight then discards its results.
  uint64_t epoch_ ABSL_GUARDED_BY(step_mu_) = 0;
  // Placements whose cache a failed device may still hold.
  std::vector<device::SequenceId> orphans_ ABSL_GUARDED_BY(step_mu_);
  // Device sequence ids, unique over the device's life, so a stale cache
  // of an earlier placement is never mistaken for a new one.
  device::SequenceId next_seq_id_ ABSL_GUARDED_BY(step_mu_) = 1;

  // Read without locks by Load(), Status() and the watchdog.
  std::atomic<int64_t> step_started_ns_{0};  // 0: no device call running.
  std::atomic<bool> in_device_call_{false};
  std::atomic<bool> abandoned_{false};  // Left hung at shutdown.
  std::atomic<int> running_count_{0};
  std::atomic<double> kv_usage_{0};
  std::atomic<int64_t> steps_{0};
  std::atomic<int64_t> device_ns_{0};
  std::atomic<int64_t> overhead_ns_{0};
  std::atomic<double> seconds_per_step_{-1};

  // Loop thread only: the step's inputs and outputs, reused.
  std::vector<int> token_buf_;
  std::vector<device::SequenceChunk> batch_;
  device::StepOutput out_;
  bool meter_warned_ = false;

  std::thread thread_;
};

}  // namespace joule::scheduler

#endif  // JOULE_SCHEDULER_DEVICE_LOOP_H_
