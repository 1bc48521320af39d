#ifndef JOULE_SERVER_JOULE_SERVICE_H_
#define JOULE_SERVER_JOULE_SERVICE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"
#include "proto/joule.grpc.pb.h"
#include "scheduler/scheduler.h"
#include "server/auth.h"
#include "server/generation_runner.h"
#include "server/write_watchdog.h"
#include "telemetry/metrics.h"

namespace joule::server {

// What the service refuses before a request reaches the scheduler.
struct ServiceOptions {
  // Null or empty: every caller is allowed. Must outlive the service.
  const ApiKeys* api_keys = nullptr;
  // Generate and GenerateStream calls running at once; more get
  // RESOURCE_EXHAUSTED. 0: no limit.
  int max_concurrent_streams = 0;
  // A stream whose Write does not complete within this is cancelled and
  // its sequence freed. 0: never.
  absl::Duration stream_write_timeout = absl::ZeroDuration();
};

// The joule.v1.Joule API: validates and tokenizes requests, hands them to
// the scheduler and turns its token events into responses.
class JouleService final : public v1::Joule::Service {
 public:
  // `runner` must outlive the service; `metrics` may be null.
  JouleService(GenerationRunner* runner, telemetry::Metrics* metrics,
               ServiceOptions options = {});

  grpc::Status Generate(grpc::ServerContext* context,
                        const v1::GenerateRequest* request,
                        v1::GenerateResponse* response) override;
  grpc::Status GenerateStream(
      grpc::ServerContext* context, const v1::GenerateRequest* request,
      grpc::ServerWriter<v1::GenerateStreamResponse>* writer) override;
  grpc::Status ListDevices(grpc::ServerContext* context,
                           const v1::ListDevicesRequest* request,
                           v1::ListDevicesResponse* response) override;
  grpc::Status GetModelInfo(grpc::ServerContext* context,
                            const v1::GetModelInfoRequest* request,
                            v1::ModelInfo* response) override;

 private:
  // What a request's metrics need, filled as far as it got.
  struct Outcome {
    std::string device;
    std::optional<absl::Duration> ttft;
    std::optional<absl::Duration> queue;
  };
  // Runs one request to the end and records its metrics. `on_token` returns
  // false when the client can no longer be written to.
  grpc::Status Run(grpc::ServerContext* context,
                   const v1::GenerateRequest& request,
                   const std::function<bool(const v1::Token&)>& on_token,
                   v1::GenerationSummary* summary);
  grpc::Status RunRequest(grpc::ServerContext* context,
                          const v1::GenerateRequest& request,
                          const std::function<bool(const v1::Token&)>& on_token,
                          v1::GenerationSummary* summary, Outcome* outcome);

  // Holds a --max_concurrent_streams slot for as long as it lives.
  class StreamSlot;
  // The API key check every handler starts with.
  grpc::Status Authorize(const grpc::ServerContext& context);
  // Authorize, then a concurrent-stream slot: OK with `*slot` set, or the
  // status to return.
  grpc::Status AdmitGeneration(const grpc::ServerContext& context,
                               std::unique_ptr<StreamSlot>* slot);

  GenerationRunner& runner_;
  telemetry::Metrics* metrics_;
  const ApiKeys no_keys_;
  const ApiKeys& keys_;
  const int max_concurrent_streams_;
  std::atomic<int> active_streams_{0};
  // Null when writes have no timeout.
  std::unique_ptr<WriteWatchdog> watchdog_;
};

// absl::Status codes map one to one onto gRPC's.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace joule::server

#endif  // JOULE_SERVER_JOULE_SERVICE_H_
