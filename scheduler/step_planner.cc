#include "scheduler/step_planner.h"

#include <algorithm>

namespace joule::scheduler {

bool TryAdmit(const Sequence& seq, KvBlockManager& kv, int running,
              const StepLimits& limits) {
  if (running >= limits.max_batch_size) return false;
  return kv.Grow(seq.id, static_cast<int64_t>(seq.context.size()) + 1);
}

StepPlan PlanStep(std::vector<std::shared_ptr<Sequence>>& running,
                  KvBlockManager& kv, const StepLimits& limits) {
  StepPlan plan;
  auto preempt_newest = [&]() {
    kv.Free(running.back()->id);
    plan.preempted.push_back(std::move(running.back()));
    running.pop_back();
  };
  // Decodes first: each needs room for one more position. A sequence that
  // cannot grow evicts the newest ones, itself last.
  for (size_t i = 0; i < running.size(); ++i) {
    Sequence* s = running[i].get();
    if (s->uncached() != 1) continue;
    while (!kv.Grow(s->id, s->cached + 1)) {
      const bool self = running.back().get() == s;
      preempt_newest();
      if (self) break;
    }
    if (i < running.size() && running[i].get() == s) plan.decode.push_back(s);
  }
  int budget = limits.max_step_tokens - static_cast<int>(plan.decode.size());
  for (const auto& sp : running) {
    Sequence* s = sp.get();
    if (s->uncached() <= 1 || budget <= 0) continue;
    // Admission reserved the whole context, so the chunk always fits.
    const int chunk = std::min(budget, s->uncached());
    kv.Grow(s->id, s->cached + chunk);
    plan.prefill.push_back({s, chunk});
    budget -= chunk;
  }
  return plan;
}

}  // namespace joule::scheduler
