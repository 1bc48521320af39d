#include "server/joule_service.h"

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "proto/status_names.h"
#include "server/text_stream.h"
#include "server/transport_security.h"
#include "spdlog/spdlog.h"

namespace joule::server {
namespace {

// How often a waiting handler checks whether its client has gone away.
constexpr absl::Duration kCancelPoll = absl::Milliseconds(20);

v1::DeviceKind ToProto(device::DeviceKind kind) {
  switch (kind) {
    case device::DeviceKind::kCpu:
      return v1::DEVICE_KIND_CPU;
    case device::DeviceKind::kFpga:
      return v1::DEVICE_KIND_FPGA;
    case device::DeviceKind::kRiscvSim:
      return v1::DEVICE_KIND_RISCV_SIM;
  }
  return v1::DEVICE_KIND_UNSPECIFIED;
}

v1::EnergySource ToProto(device::EnergySource source) {
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

// Collects one generation's events on the scheduler thread (detokenizing and
// checking stop sequences there, so a stop ends generation at once) and
// hands them to the gRPC handler thread.
class RequestStream : public scheduler::GenerationObserver {
 public:
  RequestStream(const model::Tokenizer& tokenizer,
                std::vector<std::string> stops, int prev_token,
                absl::Time arrival, telemetry::Metrics* metrics)
      : tokenizer_(tokenizer),
        metrics_(metrics),
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
    t.set_energy_source(ToProto(e.energy_source));
    if (metrics_ != nullptr && e.index > 0) {
      metrics_->InterTokenLatency(e.device, e.time - last_time_);
    }
    std::string text;
    if (!e.special)
      text = text_.Append(tokenizer_.Decode(prev_token_, e.token));
    if (e.last) text += text_.Flush();
    t.set_text(std::move(text));
    prev_token_ = e.token;
    last_time_ = e.time;
    absl::MutexLock lock(&mu_);
    if (first_token_time_ == absl::InfinitePast()) first_token_time_ = e.time;
    last_token_time_ = e.time;
    tokens_.push_back(std::move(t));
    return !text_.stopped();
  }

  void OnFinish(const scheduler::FinishEvent& e) override {
    absl::MutexLock lock(&mu_);
    finish_ = e;
  }

  // Waits up to `timeout` for events; moves out tokens and the finish.
  void Take(absl::Duration timeout, std::vector<v1::Token>* tokens,
            std::optional<scheduler::FinishEvent>* finish) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !tokens_.empty() || finish_.has_value();
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    tokens->assign(std::make_move_iterator(tokens_.begin()),
                   std::make_move_iterator(tokens_.end()));
    tokens_.clear();
    // The finish goes out only after every token before it.
    if (finish_.has_value()) *finish = finish_;
  }

  const std::string& matched_stop() const { return text_.matched_stop(); }
  absl::Time first_token_time() {
    absl::MutexLock lock(&mu_);
    return first_token_time_;
  }
  absl::Time last_token_time() {
    absl::MutexLock lock(&mu_);
    return last_token_time_;
  }

 private:
  const model::Tokenizer& tokenizer_;
  telemetry::Metrics* const metrics_;
  // Scheduler thread only.
  TextStream text_;
  int prev_token_;
  absl::Time last_time_;

  absl::Mutex mu_;
  std::deque<v1::Token> tokens_ ABSL_GUARDED_BY(mu_);
  std::optional<scheduler::FinishEvent> finish_ ABSL_GUARDED_BY(mu_);
  absl::Time first_token_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time last_token_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

absl::Time DeadlineOf(const grpc::ServerContext& context) {
  auto deadline = context.deadline();
  // No deadline shows as the far future; keep it infinite, not overflowed.
  if (deadline >
      std::chrono::system_clock::now() + std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

// Thread-safe: absl::BitGen itself is not.
uint64_t RandomU64() {
  static absl::Mutex* mu = new absl::Mutex();
  static absl::BitGen* gen = new absl::BitGen();
  absl::MutexLock lock(mu);
  return absl::Uniform<uint64_t>(*gen);
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

class JouleService::StreamSlot {
 public:
  explicit StreamSlot(std::atomic<int>* active)
      : active_(active), count_(active->fetch_add(1) + 1) {}
  ~StreamSlot() { active_->fetch_sub(1); }
  StreamSlot(const StreamSlot&) = delete;
  StreamSlot& operator=(const StreamSlot&) = delete;
  // Calls holding a slot when this one took it, itself included.
  int count() const { return count_; }

 private:
  std::atomic<int>* const active_;
  const int count_;
};

JouleService::JouleService(const model::Checkpoint& checkpoint,
                           const model::Tokenizer& tokenizer,
                           scheduler::Scheduler* scheduler,
                           telemetry::Metrics* metrics, ServiceOptions options)
    : checkpoint_(checkpoint),
      tokenizer_(tokenizer),
      scheduler_(scheduler),
      metrics_(metrics),
      keys_(options.api_keys != nullptr ? *options.api_keys : no_keys_),
      max_concurrent_streams_(options.max_concurrent_streams) {
  if (options.stream_write_timeout > absl::ZeroDuration()) {
    watchdog_ = std::make_unique<WriteWatchdog>(options.stream_write_timeout);
  }
  limits_.max_context = checkpoint.config().seq_len;
  limits_.max_prompt_bytes =
      checkpoint.config().seq_len * tokenizer.max_piece_bytes();
  for (const auto& d : scheduler->Devices()) {
    limits_.devices.push_back(d.capabilities.name);
  }
}

grpc::Status JouleService::Authorize(const grpc::ServerContext& context) {
  grpc::Status s = AuthorizeCall(keys_, context);
  if (!s.ok() && metrics_ != nullptr) metrics_->RefusedCall("unauthenticated");
  return s;
}

grpc::Status JouleService::AdmitGeneration(const grpc::ServerContext& context,
                                           std::unique_ptr<StreamSlot>* slot) {
  if (grpc::Status s = Authorize(context); !s.ok()) return s;
  *slot = std::make_unique<StreamSlot>(&active_streams_);
  if (max_concurrent_streams_ > 0 &&
      (*slot)->count() > max_concurrent_streams_) {
    slot->reset();
    if (metrics_ != nullptr) metrics_->RefusedCall("max_concurrent_streams");
    return grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("too many concurrent streams: the server runs at most ",
                     max_concurrent_streams_,
                     " generation calls at once (--max_concurrent_streams); "
                     "retry later"));
  }
  return grpc::Status::OK;
}

grpc::Status JouleService::Run(
    grpc::ServerContext* context, const v1::GenerateRequest& request,
    const std::function<bool(const v1::Token&)>& on_token,
    v1::GenerationSummary* summary) {
  const absl::Time arrival = absl::Now();
  Outcome outcome;
  grpc::Status status =
      RunRequest(context, request, on_token, summary, &outcome);
  if (metrics_ != nullptr) {
    metrics_->Request(outcome.device,
                      proto::StatusCodeName(status.error_code()), outcome.ttft,
                      absl::Now() - arrival, outcome.queue);
  }
  return status;
}

grpc::Status JouleService::RunRequest(
    grpc::ServerContext* context, const v1::GenerateRequest& request,
    const std::function<bool(const v1::Token&)>& on_token,
    v1::GenerationSummary* summary, Outcome* outcome) {
  const absl::Time arrival = absl::Now();
  if (absl::Status s = ValidateRequest(request, limits_); !s.ok()) {
    return ToGrpcStatus(s);
  }
  scheduler::GenerationRequest gen;
  gen.id = request.request_id().empty() ? absl::StrFormat("%016x", RandomU64())
                                        : request.request_id();
  gen.prompt = tokenizer_.Encode(request.prompt(), /*bos=*/true);
  if (absl::Status s = ValidatePromptLength(gen.prompt.size(), limits_);
      !s.ok()) {
    return ToGrpcStatus(s);
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
  gen.arrival = arrival;
  gen.deadline = DeadlineOf(*context);

  const std::string id = gen.id;
  const uint64_t seed = gen.sampling.seed;
  const int prompt_tokens = static_cast<int>(gen.prompt.size());
  auto stream = std::make_shared<RequestStream>(
      tokenizer_,
      std::vector<std::string>(request.stop().begin(), request.stop().end()),
      gen.prompt.back(), arrival, metrics_);
  auto handle = scheduler_->Submit(std::move(gen), stream);
  if (!handle.ok()) return ToGrpcStatus(handle.status());

  while (true) {
    std::vector<v1::Token> tokens;
    std::optional<scheduler::FinishEvent> finish;
    stream->Take(kCancelPoll, &tokens, &finish);
    for (const v1::Token& t : tokens) {
      if (!on_token(t)) {
        (*handle)->Cancel();
        return grpc::Status(grpc::StatusCode::CANCELLED,
                            "the client stopped reading the stream");
      }
    }
    if (finish.has_value()) {
      const scheduler::FinishEvent& f = *finish;
      outcome->device = f.device;
      if (f.first_token_time != absl::InfinitePast()) {
        outcome->ttft = f.first_token_time - arrival;
      }
      if (!f.device.empty()) outcome->queue = f.queue_time;
      spdlog::info(
          "request {} on {}: {} prompt + {} generated tokens in {:.3f}s ({})",
          id, f.device, f.prompt_tokens, f.completion_tokens,
          absl::ToDoubleSeconds(f.finish_time - arrival),
          f.status.ok() ? "ok" : f.status.ToString());
      if (!f.status.ok()) {
        if (f.reason != scheduler::FinishReason::kFailed) {
          return ToGrpcStatus(f.status);
        }
        // A device error is never the caller's fault: only codes that tell
        // the client something true (retry later, too big) pass through.
        absl::StatusCode code = f.status.code();
        if (code != absl::StatusCode::kUnavailable &&
            code != absl::StatusCode::kResourceExhausted &&
            code != absl::StatusCode::kDeadlineExceeded) {
          code = absl::StatusCode::kInternal;
        }
        return ToGrpcStatus(absl::Status(
            code, absl::StrCat("device ", f.device, ": ", f.status.message())));
      }
      switch (f.reason) {
        case scheduler::FinishReason::kEndOfSequence:
          summary->set_stop_reason(v1::STOP_REASON_EOS);
          break;
        case scheduler::FinishReason::kStopped:
          summary->set_stop_reason(v1::STOP_REASON_STOP_SEQUENCE);
          summary->set_stop_sequence(stream->matched_stop());
          break;
        default:
          summary->set_stop_reason(v1::STOP_REASON_LENGTH);
      }
      summary->set_prompt_tokens(prompt_tokens);
      summary->set_completion_tokens(f.completion_tokens);
      const absl::Time first = stream->first_token_time();
      const absl::Time last = stream->last_token_time();
      summary->set_time_to_first_token_seconds(
          absl::ToDoubleSeconds(first - arrival));
      summary->set_total_seconds(
          absl::ToDoubleSeconds(f.finish_time - arrival));
      if (f.completion_tokens > 1) {
        summary->set_mean_inter_token_latency_seconds(
            absl::ToDoubleSeconds(last - first) / (f.completion_tokens - 1));
      }
      summary->set_seed(seed);
      summary->set_request_id(id);
      summary->set_device(f.device);
      summary->set_queue_seconds(absl::ToDoubleSeconds(f.queue_time));
      summary->set_prefill_seconds(absl::ToDoubleSeconds(f.prefill_time));
      summary->set_decode_seconds(absl::ToDoubleSeconds(f.decode_time));
      summary->set_preemptions(f.preemptions);
      summary->set_failovers(f.failovers);
      summary->set_energy_source(ToProto(f.energy_source));
      if (f.energy_joules.has_value()) {
        summary->set_energy_joules(*f.energy_joules);
        if (f.completion_tokens > 0) {
          summary->set_joules_per_token(*f.energy_joules / f.completion_tokens);
        }
      }
      return grpc::Status::OK;
    }
    if (context->IsCancelled()) {
      (*handle)->Cancel();
      const bool expired = absl::Now() >= DeadlineOf(*context);
      return expired ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                    "deadline exceeded during generation")
                     : grpc::Status(grpc::StatusCode::CANCELLED,
                                    "the client cancelled the request");
    }
  }
}

grpc::Status JouleService::Generate(grpc::ServerContext* context,
                                    const v1::GenerateRequest* request,
                                    v1::GenerateResponse* response) {
  std::unique_ptr<StreamSlot> slot;
  if (grpc::Status s = AdmitGeneration(*context, &slot); !s.ok()) return s;
  std::string text;
  grpc::Status s = Run(
      context, *request,
      [&](const v1::Token& t) {
        text += t.text();
        *response->add_tokens() = t;
        return true;
      },
      response->mutable_summary());
  response->set_text(std::move(text));
  return s;
}

grpc::Status JouleService::GenerateStream(
    grpc::ServerContext* context, const v1::GenerateRequest* request,
    grpc::ServerWriter<v1::GenerateStreamResponse>* writer) {
  std::unique_ptr<StreamSlot> slot;
  if (grpc::Status s = AdmitGeneration(*context, &slot); !s.ok()) return s;
  std::unique_ptr<WriteWatchdog::Stream> watch =
      watchdog_ != nullptr ? watchdog_->Watch(context) : nullptr;
  auto write = [&](const v1::GenerateStreamResponse& msg) {
    if (watch != nullptr) watch->BeginWrite();
    const bool ok = writer->Write(msg);
    if (watch != nullptr) watch->EndWrite();
    return ok;
  };
  v1::GenerateStreamResponse msg;
  v1::GenerationSummary summary;
  grpc::Status s = Run(
      context, *request,
      [&](const v1::Token& t) {
        *msg.mutable_token() = t;
        return write(msg);
      },
      &summary);
  if (s.ok()) {
    *msg.mutable_summary() = std::move(summary);
    write(msg);
  }
  if (watch != nullptr && watch->timed_out()) {
    spdlog::warn(
        "stream from {}{}: a write waited over {}s for the client to read "
        "(--stream_write_timeout_seconds): cancelled, its sequence freed",
        context->peer(),
        request->request_id().empty()
            ? ""
            : absl::StrCat(" (request ", request->request_id(), ")"),
        absl::ToDoubleSeconds(watchdog_->timeout()));
    if (metrics_ != nullptr) metrics_->StreamWriteTimeout();
  }
  return s;
}

grpc::Status JouleService::ListDevices(grpc::ServerContext* context,
                                       const v1::ListDevicesRequest*,
                                       v1::ListDevicesResponse* response) {
  if (grpc::Status s = Authorize(*context); !s.ok()) return s;
  for (const scheduler::DeviceStatus& d : scheduler_->Devices()) {
    v1::Device* out = response->add_devices();
    const device::Capabilities& c = d.capabilities;
    out->set_name(c.name);
    out->set_kind(ToProto(c.kind));
    out->set_description(c.description);
    out->set_max_batch_size(c.max_batch_size);
    out->set_max_context(c.max_context);
    out->set_kv_capacity_tokens(c.kv_capacity_tokens);
    out->set_precision(c.precision);
    out->set_healthy(d.healthy);
    out->set_last_error(d.last_error);
    out->set_queued_requests(d.queued);
    out->set_running_sequences(d.running);
    out->set_kv_usage(d.kv_usage);
    out->set_energy_source(ToProto(d.energy_source));
    out->set_energy_description(d.energy_description);
    out->set_prefill_joules_per_token(std::max(0.0, d.prefill.joules_per_token));
    out->set_decode_joules_per_token(std::max(0.0, d.decode.joules_per_token));
    out->set_prefill_seconds_per_token(
        std::max(0.0, d.prefill.seconds_per_token));
    out->set_decode_seconds_per_token(std::max(0.0, d.decode.seconds_per_token));
  }
  return grpc::Status::OK;
}

grpc::Status JouleService::GetModelInfo(grpc::ServerContext* context,
                                        const v1::GetModelInfoRequest*,
                                        v1::ModelInfo* info) {
  if (grpc::Status s = Authorize(*context); !s.ok()) return s;
  const model::Config& c = checkpoint_.config();
  std::string name = checkpoint_.path();
  if (size_t slash = name.rfind('/'); slash != std::string::npos) {
    name = name.substr(slash + 1);
  }
  info->set_name(name);
  info->set_architecture("llama2");
  info->set_checkpoint_version(checkpoint_.version());
  info->set_weight_format(checkpoint_.format() == model::WeightFormat::kQ8_0
                              ? "int8 (Q8_0)"
                              : "fp32");
  info->set_group_size(checkpoint_.group_size());
  info->set_dim(c.dim);
  info->set_hidden_dim(c.hidden_dim);
  info->set_n_layers(c.n_layers);
  info->set_n_heads(c.n_heads);
  info->set_n_kv_heads(c.n_kv_heads);
  info->set_vocab_size(c.vocab_size);
  info->set_max_context(c.seq_len);
  info->set_shared_classifier(c.shared_classifier);
  info->set_parameters(c.ParameterCount());
  info->set_bos_token_id(model::Tokenizer::kBos);
  info->set_eos_token_id(model::Tokenizer::kEos);
  return grpc::Status::OK;
}

}  // namespace joule::server
