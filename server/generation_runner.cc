#include "server/generation_runner.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/text_stream.h"
#include "spdlog/spdlog.h"

namespace joule::server {

void Wakeup::Notify() {
  absl::MutexLock lock(&mu_);
  pending_ = true;
}

void Wakeup::Wait(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&pending_), timeout);
  pending_ = false;
}

// Collects one generation's events on the scheduler thread (detokenizing and
// checking stop sequences there, so a stop ends generation at once) and
// hands them to the front end's thread.
class RequestStream : public scheduler::GenerationObserver {
 public:
  RequestStream(const model::Tokenizer& tokenizer,
                std::vector<std::string> stops, int prev_token,
                absl::Time arrival, telemetry::Metrics* metrics,
                std::shared_ptr<Wakeup> wakeup)
      : tokenizer_(tokenizer),
        metrics_(metrics),
        wakeup_(std::move(wakeup)),
        text_(std::move(stops)),
        prev_token_(prev_token),
        last_time_(arrival) {}

  bool OnToken(const scheduler::TokenEvent& e) override {
    v1::Token t;
    t.set_id(e.token);
    t.set_special(e.special);
    t.set_device(e.device);
    t.set_latency_seconds(absl::ToDoubleSeconds(e.time - last_time_));
    if (e.energy_joules.has_value()) t.set_energy_joules(*e.energy_joules);
    t.set_energy_source(EnergySourceToProto(e.energy_source));
    if (metrics_ != nullptr && e.index > 0) {
      metrics_->InterTokenLatency(e.device, e.time - last_time_);
    }
    AddLogprobs(e, &t);
    std::string text;
    if (!e.special) {
      text = text_.Append(tokenizer_.Decode(prev_token_, e.token));
    }
    if (e.last) text += text_.Flush();
    t.set_text(std::move(text));
    prev_token_ = e.token;
    last_time_ = e.time;
    {
      absl::MutexLock lock(&mu_);
      if (first_token_time_ == absl::InfinitePast()) first_token_time_ = e.time;
      last_token_time_ = e.time;
      tokens_.push_back(std::move(t));
    }
    wakeup_->Notify();
    return !text_.stopped();
  }

  void OnFinish(const scheduler::FinishEvent& e) override {
    {
      absl::MutexLock lock(&mu_);
      finish_ = e;
      matched_stop_ = text_.matched_stop();
    }
    wakeup_->Notify();
  }

  void Take(std::vector<v1::Token>* tokens,
            std::optional<scheduler::FinishEvent>* finish) {
    absl::MutexLock lock(&mu_);
    tokens->assign(std::make_move_iterator(tokens_.begin()),
                   std::make_move_iterator(tokens_.end()));
    tokens_.clear();
    // The finish goes out only after every token before it.
    if (finish_.has_value()) *finish = finish_;
  }

  std::string matched_stop() {
    absl::MutexLock lock(&mu_);
    return matched_stop_;
  }
  absl::Time first_token_time() {
    absl::MutexLock lock(&mu_);
    return first_token_time_;
  }
  absl::Time last_token_time() {
    absl::MutexLock lock(&mu_);
    return last_token_time_;
  }

 private:
  // Token texts as the tokenizer decodes them after the previous token: the
  // raw piece, not the stop-checked text stream.
  void AddLogprobs(const scheduler::TokenEvent& e, v1::Token* t) const {
    if (!e.logprob.has_value()) return;
    t->set_logprob(*e.logprob);
    t->set_piece(std::string(tokenizer_.Decode(prev_token_, e.token)));
    for (const auto& [id, logprob] : e.top_logprobs) {
      v1::TokenLogprob* alt = t->add_top_logprobs();
      alt->set_id(id);
      alt->set_text(std::string(tokenizer_.Decode(prev_token_, id)));
      alt->set_logprob(logprob);
    }
  }

  const model::Tokenizer& tokenizer_;
  telemetry::Metrics* const metrics_;
  const std::shared_ptr<Wakeup> wakeup_;
  // Scheduler thread only.
  TextStream text_;
  int prev_token_;
  absl::Time last_time_;

  absl::Mutex mu_;
  std::deque<v1::Token> tokens_ ABSL_GUARDED_BY(mu_);
  std::optional<scheduler::FinishEvent> finish_ ABSL_GUARDED_BY(mu_);
  std::string matched_stop_ ABSL_GUARDED_BY(mu_);
  absl::Time first_token_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time last_token_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

RunningGeneration::RunningGeneration(
    std::shared_ptr<RequestStream> stream,
    std::shared_ptr<scheduler::Generation> handle, std::string id,
    uint64_t seed, int prompt_tokens, absl::Time arrival, std::string instance)
    : stream_(std::move(stream)),
      handle_(std::move(handle)),
      id_(std::move(id)),
      seed_(seed),
      prompt_tokens_(prompt_tokens),
      arrival_(arrival),
      instance_(std::move(instance)) {}

void RunningGeneration::Take(std::vector<v1::Token>* tokens,
                             std::optional<scheduler::FinishEvent>* finish) {
  stream_->Take(tokens, finish);
}

absl::Status RunningGeneration::Summarize(
    const scheduler::FinishEvent& f, v1::GenerationSummary* summary) const {
  spdlog::info(
      "request {} on {}: {} prompt + {} generated tokens in {:.3f}s ({})", id_,
      f.device, f.prompt_tokens, f.completion_tokens,
      absl::ToDoubleSeconds(f.finish_time - arrival_),
      f.status.ok() ? "ok" : f.status.ToString());
  if (!f.status.ok()) {
    if (f.reason != scheduler::FinishReason::kFailed) return f.status;
    // A device error is never the caller's fault: only codes that tell the
    // client something true (retry later, too big) pass through.
    absl::StatusCode code = f.status.code();
    if (code != absl::StatusCode::kUnavailable &&
        code != absl::StatusCode::kResourceExhausted &&
        code != absl::StatusCode::kDeadlineExceeded) {
      code = absl::StatusCode::kInternal;
    }
    return absl::Status(
        code, absl::StrCat("device ", f.device, ": ", f.status.message()));
  }
  switch (f.reason) {
    case scheduler::FinishReason::kEndOfSequence:
      summary->set_stop_reason(v1::STOP_REASON_EOS);
      break;
    case scheduler::FinishReason::kStopped:
      summary->set_stop_reason(v1::STOP_REASON_STOP_SEQUENCE);
      summary->set_stop_sequence(stream_->matched_stop());
      break;
    default:
      summary->set_stop_reason(v1::STOP_REASON_LENGTH);
  }
  summary->set_prompt_tokens(prompt_tokens_);
  summary->set_completion_tokens(f.completion_tokens);
  const absl::Time first = stream_->first_token_time();
  const absl::Time last = stream_->last_token_time();
  summary->set_time_to_first_token_seconds(
      absl::ToDoubleSeconds(first - arrival_));
  summary->set_total_seconds(absl::ToDoubleSeconds(f.finish_time - arrival_));
  if (f.completion_tokens > 1) {
    summary->set_mean_inter_token_latency_seconds(
        absl::ToDoubleSeconds(last - first) / (f.completion_tokens - 1));
  }
  summary->set_seed(seed_);
  summary->set_request_id(id_);
  summary->set_device(f.device);
  summary->set_server_instance(instance_);
  summary->set_queue_seconds(absl::ToDoubleSeconds(f.queue_time));
  summary->set_prefill_seconds(absl::ToDoubleSeconds(f.prefill_time));
  summary->set_decode_seconds(absl::ToDoubleSeconds(f.decode_time));
  summary->set_preemptions(f.preemptions);
  summary->set_failovers(f.failovers);
  summary->set_energy_source(EnergySourceToProto(f.energy_source));
  if (f.energy_joules.has_value()) {
    summary->set_energy_joules(*f.energy_joules);
    if (f.completion_tokens > 0) {
      summary->set_joules_per_token(*f.energy_joules / f.completion_tokens);
    }
  }
  return absl::OkStatus();
}

GenerationRunner::GenerationRunner(const model::Checkpoint& checkpoint,
                                   const model::Tokenizer& tokenizer,
                                   scheduler::Scheduler* scheduler,
                                   telemetry::Metrics* metrics)
    : checkpoint_(checkpoint),
      tokenizer_(tokenizer),
      scheduler_(scheduler),
      metrics_(metrics) {
  limits_.max_context = checkpoint.config().seq_len;
  // seq_len <= 2^20 and pieces <= 4 KiB: the product needs 64 bits.
  limits_.max_prompt_bytes = static_cast<int>(std::min<int64_t>(
      INT_MAX,
      int64_t{checkpoint.config().seq_len} * tokenizer.max_piece_bytes()));
  for (const auto& d : scheduler->Devices()) {
    limits_.devices.push_back(d.capabilities.name);
  }
}

absl::StatusOr<std::unique_ptr<RunningGeneration>> GenerationRunner::Start(
    const v1::GenerateRequest& request, absl::Time arrival, absl::Time deadline,
    std::shared_ptr<Wakeup> wakeup) {
  if (absl::Status s = ValidateRequest(request, limits_); !s.ok()) return s;
  scheduler::GenerationRequest gen;
  gen.id = request.request_id().empty() ? absl::StrFormat("%016x", RandomU64())
                                        : request.request_id();
  gen.prompt = tokenizer_.Encode(request.prompt(), /*bos=*/true);
  if (absl::Status s = ValidatePromptLength(gen.prompt.size(), limits_);
      !s.ok()) {
    return s;
  }
  gen.sampling.temperature =
      request.has_temperature() ? request.temperature() : 1.0f;
  gen.sampling.top_k = request.top_k();
  gen.sampling.top_p = request.has_top_p() ? request.top_p() : 1.0f;
  gen.sampling.seed = request.has_seed() ? request.seed() : RandomU64();
  gen.max_tokens =
      request.has_max_tokens() ? request.max_tokens() : limits_.max_context;
  gen.end_tokens = {model::Tokenizer::kBos, model::Tokenizer::kEos};
  gen.ignore_eos = request.ignore_eos();
  gen.device = request.device();
  gen.pin_device = request.pin_device();
  gen.priority = request.priority();
  gen.logprobs = request.has_logprobs() ? request.logprobs() : -1;
  gen.arrival = arrival;
  gen.deadline = deadline;

  std::string id = gen.id;
  const uint64_t seed = gen.sampling.seed;
  const int prompt_tokens = static_cast<int>(gen.prompt.size());
  auto stream = std::make_shared<RequestStream>(
      tokenizer_,
      std::vector<std::string>(request.stop().begin(), request.stop().end()),
      gen.prompt.back(), arrival, metrics_, std::move(wakeup));
  auto handle = scheduler_->Submit(std::move(gen), stream);
  if (!handle.ok()) return handle.status();
  return std::make_unique<RunningGeneration>(
      std::move(stream), *std::move(handle), std::move(id), seed, prompt_tokens,
      arrival, instance());
}

void GenerationRunner::set_instance(std::string name) {
  absl::MutexLock lock(&mu_);
  instance_ = std::move(name);
}

std::string GenerationRunner::instance() const {
  absl::MutexLock lock(&mu_);
  return instance_;
}

v1::EnergySource EnergySourceToProto(device::EnergySource source) {
  switch (source) {
    case device::EnergySource::kNone:
      return v1::ENERGY_SOURCE_UNSPECIFIED;
    case device::EnergySource::kMeasured:
      return v1::ENERGY_SOURCE_MEASURED;
    case device::EnergySource::kSimulated:
      return v1::ENERGY_SOURCE_SIMULATED;
    case device::EnergySource::kModeled:
      return v1::ENERGY_SOURCE_MODELED;
  }
  return v1::ENERGY_SOURCE_UNSPECIFIED;
}

std::string ModelName(const model::Checkpoint& checkpoint) {
  std::string name = checkpoint.path();
  if (size_t slash = name.rfind('/'); slash != std::string::npos) {
    name = name.substr(slash + 1);
  }
  return name;
}

uint64_t RandomU64() {
  // absl::BitGen itself is not thread-safe.
  static absl::Mutex* mu = new absl::Mutex();
  static absl::BitGen* gen = new absl::BitGen();
  absl::MutexLock lock(mu);
  return absl::Uniform<uint64_t>(*gen);
}

}  // namespace joule::server
