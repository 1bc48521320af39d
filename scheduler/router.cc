#include "scheduler/router.h"

#include <algorithm>

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

std::string PolicyName(RoutingPolicy policy) {
  switch (policy) {
    case RoutingPolicy::kLatency:
      return "latency";
    case RoutingPolicy::kEnergy:
      return "energy";
    case RoutingPolicy::kRoundRobin:
      return "round_robin";
  }
  return "latency";
}

double Router::ExpectedSeconds(const DeviceLoad& d) {
  const double step = d.seconds_per_step > 0 ? d.seconds_per_step : 0.0;
  const double waves =
      1.0 + double(d.queued + d.running) / std::max(1, d.max_batch_size);
  return step * waves;
}

double Router::ExpectedJoules(const DeviceLoad& d, const RequestShape& shape) {
  if (d.prefill.joules_per_token < 0 || d.decode.joules_per_token < 0) {
    return -1;
  }
  return shape.prompt_tokens * d.prefill.joules_per_token +
         shape.max_tokens * d.decode.joules_per_token;
}

int Router::PickRoundRobin(const std::vector<DeviceLoad>& devices,
                           int exclude) {
  const int n = static_cast<int>(devices.size());
  for (int k = 0; k < n; ++k) {
    const int i = (next_ + k) % n;
    if (devices[i].healthy && i != exclude) {
      next_ = (i + 1) % n;
      return i;
    }
  }
  return -1;
}

int Router::PickCheapest(const std::vector<DeviceLoad>& devices,
                         const std::vector<double>& prices, bool room_first) {
  int best = -1;
  for (int i = 0; i < static_cast<int>(devices.size()); ++i) {
    if (prices[i] < 0) continue;
    if (best < 0) {
      best = i;
      continue;
    }
    // Room first, then price; load breaks exact ties.
    const bool room = !room_first || HasRoom(devices[i]);
    const bool best_room = !room_first || HasRoom(devices[best]);
    if (room != best_room) {
      if (room) best = i;
    } else if (prices[i] < prices[best] ||
               (prices[i] == prices[best] &&
                ExpectedSeconds(devices[i]) < ExpectedSeconds(devices[best]))) {
      best = i;
    }
  }
  return best;
}

Placement Router::Pick(const std::vector<DeviceLoad>& devices,
                       const RequestShape& shape, const std::string& preferred,
                       bool pinned, int exclude) {
  Placement p;
  const int n = static_cast<int>(devices.size());
  p.prices.assign(n, -1);
  if (!preferred.empty()) {
    for (int i = 0; i < n; ++i) {
      if (devices[i].name != preferred) continue;
      const bool usable = devices[i].healthy && (pinned || i != exclude);
      if (usable || pinned) {
        p.device = usable ? i : -1;
        p.requested = true;
        return p;
      }
    }
    if (pinned) return p;
  }
  if (policy_ == RoutingPolicy::kRoundRobin) {
    p.device = PickRoundRobin(devices, exclude);
    return p;
  }
  std::vector<double> seconds(n, -1);
  for (int i = 0; i < n; ++i) {
    if (!devices[i].healthy || i == exclude) continue;
    seconds[i] = ExpectedSeconds(devices[i]);
    p.prices[i] = policy_ == RoutingPolicy::kEnergy
                      ? ExpectedJoules(devices[i], shape)
                      : seconds[i];
  }
  // Latency prices include the load; energy prices do not, so a device
  // with room in its next batch goes first.
  p.device =
      PickCheapest(devices, p.prices, policy_ == RoutingPolicy::kEnergy);
  if (p.device < 0 && policy_ == RoutingPolicy::kEnergy) {
    // No candidate can price its energy yet: the fastest takes it.
    p.prices = seconds;
    int best = -1;
    for (int i = 0; i < n; ++i) {
      if (seconds[i] >= 0 && (best < 0 || seconds[i] < seconds[best])) best = i;
    }
    p.device = best;
  }
  return p;
}

}  // namespace joule::scheduler
