#ifndef JOULE_TELEMETRY_METRICS_H_
#define JOULE_TELEMETRY_METRICS_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "device/device.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace joule::telemetry {

// "measured", "simulated", "modeled" or "none": the `source` label.
std::string SourceLabel(device::EnergySource source);

// Joule's Prometheus metrics, in SI base units, labeled by `device`,
// `source` (of energy) and `phase` (prefill/decode; a step's kind may also
// be mixed). Thread-safe.
class Metrics {
 public:
  Metrics();

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // One step's device time; `kind` is prefill, decode or mixed.
  void Step(const std::string& device, const std::string& kind,
            absl::Duration duration);
  // A step's energy spent on one phase's tokens (split by work), if known.
  void StepEnergy(const std::string& device, device::EnergySource source,
                  const std::string& phase, std::optional<double> joules);
  // A request placed on `device`, by the routing `policy` (or "requested"
  // when the request named its device).
  void Routed(const std::string& device, const std::string& policy);
  // One generated token and the energy attributed to it, if known.
  void Token(const std::string& device, device::EnergySource source,
             std::optional<double> joules);
  void PromptTokens(const std::string& device, int tokens);
  void InterTokenLatency(const std::string& device, absl::Duration latency);
  // A finished request on `api` ("grpc" or "http"); `code` is the gRPC
  // status name ("OK", ...) on gRPC and the HTTP status ("200", ...) on
  // HTTP. Device-less outcomes (rejected before placement) pass device "".
  void Request(const std::string& api, const std::string& device,
               const std::string& code,
               std::optional<absl::Duration> ttft, absl::Duration total,
               std::optional<absl::Duration> queue);
  // A call on `api` refused before it reached the scheduler, by `reason`
  // ("unauthenticated", "max_concurrent_streams", "max_http_generations").
  void RefusedCall(const std::string& api, const std::string& reason);
  // A stream cancelled because its client read nothing for
  // --stream_write_timeout_seconds.
  void StreamWriteTimeout();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& energy_;
  prometheus::Family<prometheus::Histogram>& token_energy_;
  prometheus::Family<prometheus::Counter>& generated_;
  prometheus::Family<prometheus::Counter>& prompt_;
  prometheus::Family<prometheus::Histogram>& ttft_;
  prometheus::Family<prometheus::Histogram>& itl_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Histogram>& queue_;
  prometheus::Family<prometheus::Histogram>& step_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& refused_;
  prometheus::Family<prometheus::Counter>& routed_;
  prometheus::Counter& write_timeouts_;
};

// Per-device state read at scrape time, so gauges are never stale.
struct DeviceGauges {
  std::string device;
  device::EnergySource source = device::EnergySource::kNone;
  bool healthy = true;
  int queued = 0;
  int running = 0;
  double kv_usage = 0;
  double total_joules = 0;  // For the power gauge.
};

// The gauges (queue depth, running batch size, KV usage, device power,
// device health), computed from `read` whenever Prometheus scrapes. Power
// is the rate of the device's total energy over the last ~10 s.
class GaugeCollector : public prometheus::Collectable {
 public:
  explicit GaugeCollector(std::function<std::vector<DeviceGauges>()> read);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Sample {
    absl::Time time;
    double joules;
  };
  std::function<std::vector<DeviceGauges>()> read_;
  // Meters count from zero when the server starts, about when this is made:
  // the first scrape reports mean power since then.
  const absl::Time start_ = absl::Now();
  mutable absl::Mutex mu_;
  // Per device, recent (time, total energy) samples.
  mutable std::vector<std::pair<std::string, std::vector<Sample>>> history_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace joule::telemetry

#endif  // JOULE_TELEMETRY_METRICS_H_
