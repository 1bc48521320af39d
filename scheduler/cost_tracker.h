#ifndef JOULE_SCHEDULER_COST_TRACKER_H_
#define JOULE_SCHEDULER_COST_TRACKER_H_

#include <cstdint>
#include <optional>

#include "absl/synchronization/mutex.h"

namespace joule::scheduler {

enum class Phase { kPrefill, kDecode };

// What one token of a phase costs on a device lately.
struct PhaseCost {
  double seconds_per_token = -1;  // Device time; negative while unknown.
  double joules_per_token = -1;   // Negative while unknown.
};

// A device's running cost per token in each phase, from the time and the
// attributed energy of the steps it ran. Exponentially weighted (each step
// counts `weight`), so the figure follows the device's load: decode tokens
// cost less each in a full batch than alone. Written by the device's loop,
// read by the router from any thread.
class CostTracker {
 public:
  explicit CostTracker(double weight = 0.1) : weight_(weight) {}

  // `tokens` of `phase` took `seconds` of device time and `joules` (unset
  // when the step had no energy figure).
  void Record(Phase phase, int64_t tokens, double seconds,
              std::optional<double> joules);

  PhaseCost prefill() const;
  PhaseCost decode() const;

 private:
  static void Blend(double* average, double sample, double weight);

  const double weight_;
  mutable absl::Mutex mu_;
  PhaseCost prefill_ ABSL_GUARDED_BY(mu_);
  PhaseCost decode_ ABSL_GUARDED_BY(mu_);
};

}  // namespace joule::scheduler

#endif  // JOULE_SCHEDULER_COST_TRACKER_H_
