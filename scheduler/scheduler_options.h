#ifndef JOULE_SCHEDULER_SCHEDULER_OPTIONS_H_
#define JOULE_SCHEDULER_SCHEDULER_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/time/time.h"
#include "device/device.h"
#include "scheduler/cost_tracker.h"
#include "scheduler/router.h"
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
  // Probe each device (a short prompt and one decode) before serving, so
  // the router has its time and energy per token from the start.
  bool probe_at_start = true;
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
  PhaseCost prefill, decode;     // Running costs per token (router's view).
  device::EnergySource energy_source = device::EnergySource::kNone;
  std::string energy_description;
  double total_joules = 0;  // Since start, idle included where known.
};

}  // namespace joule::scheduler

#endif  // JOULE_SCHEDULER_SCHEDULER_OPTIONS_H_
