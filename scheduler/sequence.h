#ifndef JOULE_SCHEDULER_SEQUENCE_H_
#define JOULE_SCHEDULER_SEQUENCE_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "device/device.h"
#include "model/sampler.h"
#include "scheduler/generation.h"

namespace joule::scheduler {

// One generation as the scheduler tracks it. Its KV cache on a device holds
// the first `cached` tokens of `context`; the rest is fed next, as a prefill
// chunk (several tokens) or a decode step (the one sampled token). Preemption
// and failover both set `cached` to 0, so the whole context (prompt and the
// tokens generated so far) is recomputed wherever the sequence runs next;
// the sampler moves with it, so output continues as if uninterrupted.
struct Sequence {
  Sequence(GenerationRequest req, std::shared_ptr<GenerationObserver> obs,
           int max_generated)
      : request(std::move(req)),
        observer(std::move(obs)),
        handle(std::make_shared<Generation>()),
        sampler(request.sampling),
        context(request.prompt),
        prompt_len(static_cast<int>(request.prompt.size())),
        max_generated(max_generated) {}

  GenerationRequest request;
  std::shared_ptr<GenerationObserver> observer;
  std::shared_ptr<Generation> handle;
  model::Sampler sampler;
  std::vector<int> context;
  const int prompt_len;
  const int max_generated;

  int generated() const {
    return static_cast<int>(context.size()) - prompt_len;
  }
  int uncached() const { return static_cast<int>(context.size()) - cached; }

  // Placement on a device; a fresh id each time it is admitted, so a stale
  // cache of an earlier placement can never be confused with this one.
  device::SequenceId id = 0;
  int cached = 0;
  // Queue order: earlier runs first. arrival minus a priority bonus.
  absl::Time rank_time;
  uint64_t order = 0;  // Tie-break, and newest-first preemption.

  FinishEvent stats;  // Timings and counters, sent with OnFinish.
  // Energy of the steps since the last emitted token; `pending_known` is
  // false once any of them had no energy figure.
  double pending_joules = 0;
  bool pending_known = true;
  bool energy_known = true;  // Every emitted token's energy was known.
  bool scheduled_once = false;
  // With request.logprobs >= 0: the step's logits as the device returned
  // them, since the sampler overwrites its input. Kept to reuse its memory
  // token after token.
  std::vector<float> raw_logits;
};

// A sequence that has ended, and how.
struct Done {
  std::shared_ptr<Sequence> seq;
  FinishReason reason;
  absl::Status status;
};

// Completes each sequence's FinishEvent and hands it to its observer (once:
// every Done must be finished exactly once); clears `done`. Call with no
// scheduler lock held, since observers may do work.
void FinishAll(std::vector<Done>& done);

}  // namespace joule::scheduler

#endif  // JOULE_SCHEDULER_SEQUENCE_H_
