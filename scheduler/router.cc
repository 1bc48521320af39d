#include "scheduler/router.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace joule::scheduler {

absl::StatusOr<RoutingPolicy> ParseRoutingPolicy(absl::string_view name) {
  if (name == "latency") return RoutingPolicy::kLatency;
  if (name == "energy") return RoutingPolicy::kEnergy;
  if (name == "round_robin") return RoutingPolicy::kRoundRobin;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown routing policy '", name,
                   "'; use latency, energy or round_robin"));
}

double Router::ExpectedSeconds(const DeviceLoad& d) {
  // A step serves up to max_batch_size sequences; beyond that, work queues.
  // A device never measured yet costs nothing, so it is tried first and
  // every device gets a measured speed (a guess would keep a fast device
  // unused behind a slower measured one).
  const double step = d.seconds_per_step > 0 ? d.seconds_per_step : 0.0;
  const double waves =
      1.0 + double(d.queued + d.running) / std::max(1, d.max_batch_size);
  return step * waves;
}

int Router::Pick(const std::vector<DeviceLoad>& devices,
                 const std::string& preferred, bool pinned, int exclude) {
  if (!preferred.empty()) {
    for (size_t i = 0; i < devices.size(); ++i) {
      if (devices[i].name != preferred) continue;
      if (pinned) return devices[i].healthy ? int(i) : -1;
      if (devices[i].healthy && int(i) != exclude) return int(i);
    }
    if (pinned) return -1;
  }
  const int n = static_cast<int>(devices.size());
  if (policy_ == RoutingPolicy::kRoundRobin) {
    for (int k = 0; k < n; ++k) {
      const int i = (next_ + k) % n;
      if (devices[i].healthy && i != exclude) {
        next_ = (i + 1) % n;
        return i;
      }
    }
    return -1;
  }
  int best = -1;
  double best_cost = 0;
  for (int i = 0; i < n; ++i) {
    const DeviceLoad& d = devices[i];
    if (!d.healthy || i == exclude) continue;
    double cost = ExpectedSeconds(d);
    if (policy_ == RoutingPolicy::kEnergy && d.joules_per_token > 0) {
      // Energy first; load only breaks near-ties (within 1%).
      cost = d.joules_per_token *
             (1.0 + 0.01 * ExpectedSeconds(d) / (ExpectedSeconds(d) + 1.0));
    }
    if (best < 0 || cost < best_cost) {
      best = i;
      best_cost = cost;
    }
  }
  return best;
}

}  // namespace joule::scheduler
