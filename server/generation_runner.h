#ifndef JOULE_SERVER_GENERATION_RUNNER_H_
#define JOULE_SERVER_GENERATION_RUNNER_H_

// What every front end (gRPC, HTTP) does with a v1::GenerateRequest:
// validate, tokenize, submit to the scheduler, turn its events into
// v1::Token messages and its finish into a v1::GenerationSummary. Transport
// free, so both APIs share one queue, one batch and one set of rules.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"
#include "proto/joule.pb.h"
#include "scheduler/scheduler.h"
#include "server/request_validation.h"
#include "telemetry/metrics.h"

namespace joule::server {

// Wakes one waiting front-end thread when any of its generations has news.
class Wakeup {
 public:
  void Notify();
  // Returns once Notify has been called since the last Wait returned, or
  // after `timeout`.
  void Wait(absl::Duration timeout);

 private:
  absl::Mutex mu_;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
};

class RequestStream;

// One submitted generation, seen from the front end's thread.
class RunningGeneration {
 public:
  RunningGeneration(std::shared_ptr<RequestStream> stream,
                    std::shared_ptr<scheduler::Generation> handle,
                    std::string id, uint64_t seed, int prompt_tokens,
                    absl::Time arrival, std::string instance);

  // Moves out the tokens ready now and, once every token has been taken,
  // the finish.
  void Take(std::vector<v1::Token>* tokens,
            std::optional<scheduler::FinishEvent>* finish);
  // Ends the generation at the next step and frees its KV cache.
  void Cancel() { handle_->Cancel(); }

  // The finish as the API reports it: OK with `summary` filled, or the
  // status to return (device errors that are not the caller's fault become
  // INTERNAL, naming the device).
  absl::Status Summarize(const scheduler::FinishEvent& finish,
                         v1::GenerationSummary* summary) const;

  const std::string& id() const { return id_; }
  uint64_t seed() const { return seed_; }
  int prompt_tokens() const { return prompt_tokens_; }
  absl::Time arrival() const { return arrival_; }

 private:
  std::shared_ptr<RequestStream> stream_;
  std::shared_ptr<scheduler::Generation> handle_;
  const std::string id_;
  const uint64_t seed_;
  const int prompt_tokens_;
  const absl::Time arrival_;
  const std::string instance_;
};

class GenerationRunner {
 public:
  // `metrics` may be null.
  GenerationRunner(const model::Checkpoint& checkpoint,
                   const model::Tokenizer& tokenizer,
                   scheduler::Scheduler* scheduler,
                   telemetry::Metrics* metrics);

  // Validates, tokenizes and submits `request`; `wakeup` is notified on
  // every token and at the finish. Errors are the request's fault
  // (INVALID_ARGUMENT naming the field) or the scheduler's refusal
  // (RESOURCE_EXHAUSTED, UNAVAILABLE, NOT_FOUND).
  absl::StatusOr<std::unique_ptr<RunningGeneration>> Start(
      const v1::GenerateRequest& request, absl::Time arrival,
      absl::Time deadline, std::shared_ptr<Wakeup> wakeup);

  // The replica's name, reported in every summary (set once its port is
  // known).
  void set_instance(std::string name) ABSL_LOCKS_EXCLUDED(mu_);
  std::string instance() const ABSL_LOCKS_EXCLUDED(mu_);

  const RequestLimits& limits() const { return limits_; }
  const model::Tokenizer& tokenizer() const { return tokenizer_; }
  const model::Checkpoint& checkpoint() const { return checkpoint_; }
  scheduler::Scheduler& scheduler() const { return *scheduler_; }

 private:
  const model::Checkpoint& checkpoint_;
  const model::Tokenizer& tokenizer_;
  scheduler::Scheduler* const scheduler_;
  telemetry::Metrics* const metrics_;
  RequestLimits limits_;
  mutable absl::Mutex mu_;
  std::string instance_ ABSL_GUARDED_BY(mu_);
};

v1::EnergySource EnergySourceToProto(device::EnergySource source);

// The served model's name: its checkpoint's file name.
std::string ModelName(const model::Checkpoint& checkpoint);

// A random id or seed. Thread-safe.
uint64_t RandomU64();

}  // namespace joule::server

#endif  // JOULE_SERVER_GENERATION_RUNNER_H_
