#ifndef JOULE_SCHEDULER_ROUTER_H_
#define JOULE_SCHEDULER_ROUTER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "scheduler/cost_tracker.h"

namespace joule::scheduler {

enum class RoutingPolicy {
  kLatency,     // Least expected time per token.
  kEnergy,      // Least expected energy for the request.
  kRoundRobin,  // Healthy devices in turn.
};

absl::StatusOr<RoutingPolicy> ParseRoutingPolicy(absl::string_view name);
std::string PolicyName(RoutingPolicy policy);

// What the router knows of a device when it decides.
struct DeviceLoad {
  std::string name;
  bool healthy = true;
  int queued = 0;
  int running = 0;
  int max_batch_size = 1;
  double seconds_per_step = -1;  // Running average; negative while unknown.
  PhaseCost prefill, decode;     // Running costs per token.
};

// The work a request asks for, as the router prices it.
struct RequestShape {
  int prompt_tokens = 0;
  int max_tokens = 0;
};

struct Placement {
  int device = -1;  // Index into the loads; -1: no device can take it.
  // Chosen by the request's own device name rather than by the policy.
  bool requested = false;
  // Each device's price under the policy (seconds or joules; negative:
  // not a candidate or not priced), for the routing log.
  std::vector<double> prices;
};

// Picks a device for a request. A named device is used while healthy
// (always, if pinned: then none when it is not); otherwise the policy picks
// among healthy devices, skipping `exclude`.
class Router {
 public:
  explicit Router(RoutingPolicy policy) : policy_(policy) {}

  Placement Pick(const std::vector<DeviceLoad>& devices,
                 const RequestShape& shape, const std::string& preferred,
                 bool pinned, int exclude = -1);
  RoutingPolicy policy() const { return policy_; }

  // Expected seconds per token for one more sequence on `d`: a step's time
  // for every batch's worth of work ahead of it. A device never measured
  // costs nothing, so every device gets measured.
  static double ExpectedSeconds(const DeviceLoad& d);
  // Expected joules of the request on `d`: its prompt at the prefill cost
  // and all of max_tokens at the decode cost. Negative until `d` has both
  // figures (a device without a meter never has them).
  static double ExpectedJoules(const DeviceLoad& d, const RequestShape& shape);
  // Whether `d` could run one more sequence in its next step.
  static bool HasRoom(const DeviceLoad& d) {
    return d.queued + d.running < d.max_batch_size;
  }

 private:
  int PickRoundRobin(const std::vector<DeviceLoad>& devices, int exclude);
  // The cheapest priced candidate (among those with room first, if
  // `room_first`); -1 if none is priced.
  static int PickCheapest(const std::vector<DeviceLoad>& devices,
                          const std::vector<double>& prices, bool room_first);

  RoutingPolicy policy_;
  int next_ = 0;  // Round robin position.
};

}  // namespace joule::scheduler

#endif  // JOULE_SCHEDULER_ROUTER_H_
