#ifndef JOULE_SCHEDULER_STEP_PLANNER_H_
#define JOULE_SCHEDULER_STEP_PLANNER_H_

#include <memory>
#include <vector>

#include "scheduler/kv_block_manager.h"
#include "scheduler/sequence.h"

namespace joule::scheduler {

struct StepLimits {
  int max_batch_size = 64;
  // Tokens one iteration may compute: every decoding sequence's token
  // always runs, prefill chunks share what is left (so keep it above
  // max_batch_size, or a full batch of decodes leaves prompts waiting).
  int max_step_tokens = 512;
};

struct StepPlan {
  struct Chunk {
    Sequence* seq;
    int tokens;
  };
  std::vector<Chunk> prefill;
  std::vector<Sequence*> decode;
  // Evicted to make room; their blocks are already freed, the caller
  // releases them on the device and requeues them.
  std::vector<std::shared_ptr<Sequence>> preempted;
  bool empty() const { return prefill.empty() && decode.empty(); }
};

// Admits a waiting sequence if there is a free batch slot and KV blocks for
// its whole context plus the token it will produce next, and reserves those
// blocks at once: two prompts admitted together can then never stall each
// other half-way through prefill.
bool TryAdmit(const Sequence& seq, KvBlockManager& kv, int running,
              const StepLimits& limits);

// Plans one iteration for `running` (oldest first): reserves KV blocks for
// every token it schedules, preempting the newest sequences when blocks run
// out (they recompute later rather than fail), and removes preempted
// sequences from `running`.
StepPlan PlanStep(std::vector<std::shared_ptr<Sequence>>& running,
                  KvBlockManager& kv, const StepLimits& limits);

}  // namespace joule::scheduler

#endif  // JOULE_SCHEDULER_STEP_PLANNER_H_
