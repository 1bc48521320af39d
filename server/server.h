#ifndef JOULE_SERVER_SERVER_H_
#define JOULE_SERVER_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "device/device.h"
#include "device/registry.h"
#include "grpcpp/grpcpp.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"
#include "prometheus/exposer.h"
#include "scheduler/scheduler.h"
#include "server/auth.h"
#include "server/chat_template.h"
#include "server/generation_runner.h"
#include "server/http_server.h"
#include "server/joule_service.h"
#include "server/openai_api.h"
#include "server/reflection_service.h"
#include "server/transport_security.h"
#include "telemetry/meter_factory.h"
#include "telemetry/metrics.h"

namespace joule::server {

// HTTP/2 connection limits of the gRPC port. A zero duration turns that
// limit off.
struct ConnectionOptions {
  // The server pings a connection with calls in flight after this long
  // without traffic, and closes it if the ping is not answered within
  // keepalive_timeout: a vanished client stops holding its streams.
  absl::Duration keepalive_time = absl::Seconds(60);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // A connection with no call for this long is closed (GOAWAY).
  absl::Duration max_connection_idle = absl::Minutes(5);
  // A connection older than this is asked to go away, and closed after
  // the grace period so that running generations can finish.
  absl::Duration max_connection_age = absl::Minutes(30);
  absl::Duration max_connection_age_grace = absl::Minutes(2);
  // Client pings closer together than this count as abuse (two strikes
  // close the connection).
  absl::Duration min_client_ping_interval = absl::Seconds(10);
};

// The Prometheus endpoint (its port is ServerOptions::metrics_port).
struct MetricsOptions {
  // Loopback unless Prometheus scrapes from another machine.
  std::string host = "127.0.0.1";
  // Worker threads: each holds one connection, for up to request_timeout
  // while a client sends its request slowly.
  int threads = 8;
  absl::Duration request_timeout = absl::Seconds(10);
};

struct ServerOptions {
  std::string host = "0.0.0.0";
  int port = 50051;  // 0 picks a free port.
  // This replica's name in summaries and model info. Empty: hostname:port.
  std::string instance_name;
  std::string checkpoint_path;
  std::string tokenizer_path;
  std::vector<std::string> devices = {"cpu"};
  scheduler::SchedulerOptions scheduler;
  // Prometheus metrics on this port (0: a free one; -1: off).
  int metrics_port = -1;
  MetricsOptions metrics;
  // TLS on the gRPC port; nullopt: plaintext.
  std::optional<TlsConfig> tls;
  // Empty: the API and reflection are open. Health always is.
  ApiKeys api_keys;
  // 0: no limit (see ServiceOptions).
  int max_concurrent_streams = 0;
  absl::Duration stream_write_timeout = absl::ZeroDuration();
  ConnectionOptions connection;
  // The OpenAI-compatible HTTP API (port -1: off). It shares the gRPC
  // port's TLS material and API keys.
  HttpOptions http;
  ChatTemplate chat_template;
  telemetry::EnergyConfig energy;
  device::DeviceContext device_context;
  // Makes a device from its name; tests put fakes here.
  std::function<absl::StatusOr<std::unique_ptr<device::Device>>(
      absl::string_view)>
      device_factory;
};

// A running Joule server: the model, its devices, the scheduler, the gRPC
// endpoint with the health and reflection services, and the
// OpenAI-compatible HTTP endpoint. Both APIs share one scheduler.
class JouleServer {
 public:
  static absl::StatusOr<std::unique_ptr<JouleServer>> Start(
      const ServerOptions& options);
  ~JouleServer();

  int port() const { return port_; }
  const std::string& instance_name() const { return instance_name_; }
  int metrics_port() const { return metrics_port_; }
  // -1 when HTTP is off.
  int http_port() const { return http_ != nullptr ? http_->port() : -1; }
  const model::Checkpoint& checkpoint() const { return *checkpoint_; }
  // For benchmarks and tests that read the step loops' own counters.
  const scheduler::Scheduler& scheduler() const { return *scheduler_; }

  // Lame duck: gRPC health turns NOT_SERVING and HTTP /health 503, while
  // every call is still served. Load balancers that poll health stop
  // sending new calls before Shutdown refuses them (gRPC answers a call
  // that arrives as shutdown begins with CANCELLED: grpc/grpc#41785).
  // Idempotent.
  void EnterLameDuck();
  // Stops taking calls, lets running ones finish for up to `grace`, then
  // cancels the rest. Idempotent.
  void Shutdown(absl::Duration grace);

  // Health service names: overall, and one per device.
  static constexpr char kServiceName[] = "joule.v1.Joule";
  static std::string DeviceHealthName(const std::string& device) {
    return std::string(kServiceName) + "." + device;
  }

 private:
  JouleServer() = default;
  absl::Status StartMetrics(const ServerOptions& options);
  absl::Status StartGrpc(const ServerOptions& options);
  absl::Status StartHttp(const ServerOptions& options);
  // Mirrors device health into the gRPC health service: the API is
  // SERVING while any device is healthy.
  void OnDeviceHealth(const std::string& device, bool healthy);
  absl::Mutex health_mu_;

  std::unique_ptr<telemetry::Metrics> metrics_;
  std::shared_ptr<telemetry::GaugeCollector> gauges_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int metrics_port_ = -1;
  std::unique_ptr<model::Checkpoint> checkpoint_;
  std::unique_ptr<model::Tokenizer> tokenizer_;
  std::unique_ptr<scheduler::Scheduler> scheduler_;
  ApiKeys api_keys_;
  std::unique_ptr<GenerationRunner> runner_;
  std::unique_ptr<JouleService> service_;
  std::unique_ptr<OpenAiApi> openai_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<ReflectionService> reflection_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string instance_name_;
  // Health no longer follows the devices: NOT_SERVING from here on.
  bool lame_duck_ ABSL_GUARDED_BY(health_mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(health_mu_) = false;
};

}  // namespace joule::server

#endif  // JOULE_SERVER_SERVER_H_
