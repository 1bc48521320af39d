#ifndef JOULE_SCHEDULER_ROUTER_H_
#define JOULE_SCHEDULER_ROUTER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace joule::scheduler {

enum class RoutingPolicy {
  kLatency,     // Least expected time per token.
  kEnergy,      // Least expected energy per token (latency where unknown).
  kRoundRobin,  // Healthy devices in turn.
};

absl::StatusOr<RoutingPolicy> ParseRoutingPolicy(absl::string_view name);

// What the router knows of a device when it decides.
struct DeviceLoad {
  std::string name;
  bool healthy = true;
  int queued = 0;
  int running = 0;
  int max_batch_size = 1;
  // Running averages; negative while unknown.
  double seconds_per_step = -1;
  double joules_per_token = -1;
};

// Picks a device for a request. A named device is used while healthy
// (always, if pinned: then -1 when it is not); otherwise the policy picks
// among healthy devices, skipping `exclude`. -1: no device can take it.
class Router {
 public:
  explicit Router(RoutingPolicy policy) : policy_(policy) {}

  int Pick(const std::vector<DeviceLoad>& devices, const std::string& preferred,
           bool pinned, int exclude = -1);
  RoutingPolicy policy() const { return policy_; }

 private:
  // Expected seconds per token for one more sequence on `d`.
  static double ExpectedSeconds(const DeviceLoad& d);

  RoutingPolicy policy_;
  int next_ = 0;  // Round robin position.
};

}  // namespace joule::scheduler

#endif  // JOULE_SCHEDULER_ROUTER_H_
