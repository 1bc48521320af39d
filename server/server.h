#ifndef JOULE_SERVER_SERVER_H_
#define JOULE_SERVER_SERVER_H_

#include <functional>
#include <memory>
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
#include "server/joule_service.h"
#include "telemetry/meter_factory.h"
#include "telemetry/metrics.h"

namespace joule::server {

struct ServerOptions {
  std::string host = "0.0.0.0";
  int port = 50051;  // 0 picks a free port.
  std::string checkpoint_path;
  std::string tokenizer_path;
  std::vector<std::string> devices = {"cpu"};
  scheduler::SchedulerOptions scheduler;
  // Prometheus metrics on this port (0: a free one; -1: off).
  int metrics_port = -1;
  telemetry::EnergyConfig energy;
  device::DeviceOptions device_options;
  // Makes a device from its name; tests put fakes here.
  std::function<absl::StatusOr<std::unique_ptr<device::Device>>(
      absl::string_view)>
      device_factory;
};

// A running Joule server: the model, its devices, the scheduler and the gRPC
// endpoint with the health and reflection services.
class JouleServer {
 public:
  static absl::StatusOr<std::unique_ptr<JouleServer>> Start(
      const ServerOptions& options);
  ~JouleServer();

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  const model::Checkpoint& checkpoint() const { return *checkpoint_; }
  // For benchmarks and tests that read the step loops' own counters.
  const scheduler::Scheduler& scheduler() const { return *scheduler_; }

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
  std::unique_ptr<JouleService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ ABSL_GUARDED_BY(health_mu_) = false;
};

}  // namespace joule::server

#endif  // JOULE_SERVER_SERVER_H_
