#ifndef JOULE_SCHEDULER_GENERATION_H_
#define JOULE_SCHEDULER_GENERATION_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "device/device.h"
#include "model/sampler.h"

namespace joule::scheduler {

// Most alternatives a request may ask to see per token (the OpenAI chat
// API's limit for top_logprobs).
constexpr int kMaxLogprobs = 20;

// What the server asks the scheduler to generate: tokens in, tokens out.
struct GenerationRequest {
  std::string id;
  std::vector<int> prompt;  // BOS first; at least one token.
  model::SamplingParams sampling;
  // Tokens to generate at most; the scheduler also stops when the context
  // is full.
  int max_tokens = 1;
  // Tokens that end the sequence (BOS and EOS for llama2.c models).
  std::vector<int> end_tokens;
  // Treat end_tokens as ordinary tokens (for benchmarks).
  bool ignore_eos = false;
  std::string device;  // Preferred device; empty: the router chooses.
  // Run only on `device`: fail rather than move to another device.
  bool pin_device = false;
  // Higher runs sooner. Waiting requests age, so none starves.
  int priority = 0;
  absl::Time arrival = absl::Now();
  absl::Time deadline = absl::InfiniteFuture();
  // -1: no log-probabilities. 0..kMaxLogprobs: each TokenEvent carries the
  // chosen token's log-probability and this many most likely alternatives.
  // Anything else is refused by Scheduler::Submit.
  int logprobs = -1;
};

struct TokenEvent {
  int token = 0;
  int index = 0;  // 0 for the first generated token.
  // One of the request's end_tokens (it ends generation unless ignore_eos).
  bool special = false;
  // No more tokens follow (length limit or end of sequence).
  bool last = false;
  absl::Time time;
  std::string device;
  // Energy attributed to this token: its share of every step since the
  // previous token (the first token carries its prompt's prefill). Unset
  // where the device has no meter.
  std::optional<double> energy_joules;
  device::EnergySource energy_source = device::EnergySource::kNone;
  // With the request's logprobs >= 0: the token's log-probability under the
  // model's own distribution, the log-softmax of the raw logits, before
  // temperature, top-k and top-p (as vLLM reports it), so not the chance
  // the sampler gave the token.
  std::optional<float> logprob;
  // The request's `logprobs` most likely tokens (fewer only if the
  // vocabulary is smaller) as (token, log-probability) under the same
  // distribution, most likely first, equal logits by lower token id. The
  // chosen token is among them only if it ranks that high.
  std::vector<std::pair<int, float>> top_logprobs;
};

enum class FinishReason {
  kLength,         // max_tokens, or the context is full.
  kEndOfSequence,  // The model emitted BOS or EOS.
  kStopped,        // The observer asked to stop (a stop sequence).
  kCancelled,      // Cancel() was called (the client went away).
  kDeadline,       // The request's deadline passed.
  kFailed,         // The device failed; `status` says how.
};

struct FinishEvent {
  FinishReason reason = FinishReason::kLength;
  absl::Status status;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  std::string device;
  absl::Time first_token_time = absl::InfinitePast();
  absl::Time finish_time;
  absl::Duration queue_time;    // Arrival to first step.
  absl::Duration prefill_time;  // Device time of prefill steps.
  absl::Duration decode_time;   // Device time of decode steps.
  // Times the sequence was preempted for KV space, or moved off a failed
  // device; both recompute its cache elsewhere.
  int preemptions = 0;
  int failovers = 0;
  // Sum over the generated tokens; unset if any token's energy is unknown.
  std::optional<double> energy_joules;
  device::EnergySource energy_source = device::EnergySource::kNone;
};

// Receives a generation's results, on the scheduler's thread: keep it fast
// and never block.
class GenerationObserver {
 public:
  virtual ~GenerationObserver() = default;
  // Returns false to end the generation after this token.
  virtual bool OnToken(const TokenEvent& event) = 0;
  // Called exactly once, last.
  virtual void OnFinish(const FinishEvent& event) = 0;
};

// The caller's handle on a submitted generation.
class Generation {
 public:
  // Ends the generation at the next step boundary and frees its KV cache;
  // the observer then gets OnFinish(kCancelled) unless it already finished.
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> cancelled_{false};
};

}  // namespace joule::scheduler

#endif  // JOULE_SCHEDULER_GENERATION_H_
