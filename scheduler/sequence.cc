#include "scheduler/sequence.h"

#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace joule::scheduler {

void FinishAll(std::vector<Done>& done) {
  for (Done& d : done) {
    Sequence& s = *d.seq;
    s.stats.reason = d.reason;
    s.stats.status = d.status;
    s.stats.completion_tokens = s.generated();
    s.stats.finish_time = absl::Now();
    if (!s.energy_known) s.stats.energy_joules.reset();
    if (!d.status.ok() && d.reason == FinishReason::kFailed) {
      spdlog::warn("request {} failed: {}", s.request.id, d.status.ToString());
    }
    s.observer->OnFinish(s.stats);
  }
  done.clear();
}

}  // namespace joule::scheduler
