#include "scheduler/cost_tracker.h"

namespace joule::scheduler {

void CostTracker::Blend(double* average, double sample, double weight) {
  *average = *average < 0 ? sample : (1 - weight) * *average + weight * sample;
}

void CostTracker::Record(Phase phase, int64_t tokens, double seconds,
                         std::optional<double> joules) {
  if (tokens <= 0) return;
  absl::MutexLock lock(&mu_);
  PhaseCost& c = phase == Phase::kPrefill ? prefill_ : decode_;
  Blend(&c.seconds_per_token, seconds / tokens, weight_);
  if (joules.has_value()) Blend(&c.joules_per_token, *joules / tokens, weight_);
}

PhaseCost CostTracker::prefill() const {
  absl::MutexLock lock(&mu_);
  return prefill_;
}

PhaseCost CostTracker::decode() const {
  absl::MutexLock lock(&mu_);
  return decode_;
}

}  // namespace joule::scheduler
