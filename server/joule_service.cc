#include "server/joule_service.h"

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "proto/status_names.h"
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

absl::Time DeadlineOf(const grpc::ServerContext& context) {
  auto deadline = context.deadline();
  // No deadline shows as the far future; keep it infinite, not overflowed.
  if (deadline >
      std::chrono::system_clock::now() + std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
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

JouleService::JouleService(GenerationRunner* runner,
                           telemetry::Metrics* metrics, ServiceOptions options)
    : runner_(*runner),
      metrics_(metrics),
      keys_(options.api_keys != nullptr ? *options.api_keys : no_keys_),
      max_concurrent_streams_(options.max_concurrent_streams) {
  if (options.stream_write_timeout > absl::ZeroDuration()) {
    watchdog_ = std::make_unique<WriteWatchdog>(options.stream_write_timeout);
  }
}

grpc::Status JouleService::Authorize(const grpc::ServerContext& context) {
  grpc::Status s = AuthorizeCall(keys_, context);
  if (!s.ok() && metrics_ != nullptr)
    metrics_->RefusedCall("grpc", "unauthenticated");
  return s;
}

grpc::Status JouleService::AdmitGeneration(const grpc::ServerContext& context,
                                           std::unique_ptr<StreamSlot>* slot) {
  if (grpc::Status s = Authorize(context); !s.ok()) return s;
  *slot = std::make_unique<StreamSlot>(&active_streams_);
  if (max_concurrent_streams_ > 0 &&
      (*slot)->count() > max_concurrent_streams_) {
    slot->reset();
    if (metrics_ != nullptr)
      metrics_->RefusedCall("grpc", "max_concurrent_streams");
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
    metrics_->Request("grpc", outcome.device,
                      proto::StatusCodeName(status.error_code()), outcome.ttft,
                      absl::Now() - arrival, outcome.queue);
  }
  return status;
}

grpc::Status JouleService::RunRequest(
    grpc::ServerContext* context, const v1::GenerateRequest& request,
    const std::function<bool(const v1::Token&)>& on_token,
    v1::GenerationSummary* summary, Outcome* outcome) {
  auto wakeup = std::make_shared<Wakeup>();
  auto gen = runner_.Start(request, absl::Now(), DeadlineOf(*context), wakeup);
  if (!gen.ok()) return ToGrpcStatus(gen.status());
  while (true) {
    wakeup->Wait(kCancelPoll);
    std::vector<v1::Token> tokens;
    std::optional<scheduler::FinishEvent> finish;
    (*gen)->Take(&tokens, &finish);
    for (const v1::Token& t : tokens) {
      if (!on_token(t)) {
        (*gen)->Cancel();
        return grpc::Status(grpc::StatusCode::CANCELLED,
                            "the client stopped reading the stream");
      }
    }
    if (finish.has_value()) {
      outcome->device = finish->device;
      if (finish->first_token_time != absl::InfinitePast()) {
        outcome->ttft = finish->first_token_time - (*gen)->arrival();
      }
      if (!finish->device.empty()) outcome->queue = finish->queue_time;
      return ToGrpcStatus((*gen)->Summarize(*finish, summary));
    }
    if (context->IsCancelled()) {
      (*gen)->Cancel();
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
  for (const scheduler::DeviceStatus& d : runner_.scheduler().Devices()) {
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
    out->set_energy_source(EnergySourceToProto(d.energy_source));
    out->set_energy_description(d.energy_description);
    out->set_prefill_joules_per_token(
        std::max(0.0, d.prefill.joules_per_token));
    out->set_decode_joules_per_token(std::max(0.0, d.decode.joules_per_token));
    out->set_prefill_seconds_per_token(
        std::max(0.0, d.prefill.seconds_per_token));
    out->set_decode_seconds_per_token(
        std::max(0.0, d.decode.seconds_per_token));
  }
  return grpc::Status::OK;
}

grpc::Status JouleService::GetModelInfo(grpc::ServerContext* context,
                                        const v1::GetModelInfoRequest*,
                                        v1::ModelInfo* info) {
  if (grpc::Status s = Authorize(*context); !s.ok()) return s;
  const model::Checkpoint& checkpoint = runner_.checkpoint();
  const model::Config& c = checkpoint.config();
  info->set_name(ModelName(checkpoint));
  info->set_server_instance(runner_.instance());
  info->set_architecture("llama2");
  info->set_checkpoint_version(checkpoint.version());
  info->set_weight_format(model::WeightFormatName(checkpoint.format()));
  info->set_file_format(checkpoint.gguf() != nullptr ? "gguf" : "llama2.c");
  info->set_group_size(checkpoint.group_size());
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
