#include "telemetry/metrics.h"

#include "prometheus/metric_family.h"

namespace joule::telemetry {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildHistogram;
using prometheus::Histogram;

const Histogram::BucketBoundaries kJoules = {1e-6, 3e-6, 1e-5, 3e-5, 1e-4,
                                             3e-4, 1e-3, 3e-3, 0.01, 0.03,
                                             0.1,  0.3,  1,    3,    10};
const Histogram::BucketBoundaries kTtft = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                           0.5,   1,    2.5,   5,    10,  30};
const Histogram::BucketBoundaries kItl = {
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2.5};
const Histogram::BucketBoundaries kRequest = {0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                              5,    10,  30,   60,  120, 300};
const Histogram::BucketBoundaries kQueue = {
    0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30};
const Histogram::BucketBoundaries kStep = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

prometheus::ClientMetric Gauge(
    double value, std::vector<prometheus::ClientMetric::Label> labels) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  return m;
}

}  // namespace

std::string SourceLabel(device::EnergySource source) {
  switch (source) {
    case device::EnergySource::kMeasured:
      return "measured";
    case device::EnergySource::kSimulated:
      return "simulated";
    case device::EnergySource::kModeled:
      return "modeled";
    case device::EnergySource::kNone:
      return "none";
  }
  return "none";
}

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      energy_(
          BuildCounter()
              .Name("joule_energy_joules_total")
              .Help("Energy used by device steps, by energy source and phase.")
              .Register(*registry_)),
      token_energy_(BuildHistogram()
                        .Name("joule_token_energy_joules")
                        .Help("Energy attributed to each generated token.")
                        .Register(*registry_)),
      generated_(BuildCounter()
                     .Name("joule_generated_tokens_total")
                     .Help("Tokens generated.")
                     .Register(*registry_)),
      prompt_(BuildCounter()
                  .Name("joule_prompt_tokens_total")
                  .Help("Prompt tokens processed (once per request).")
                  .Register(*registry_)),
      ttft_(BuildHistogram()
                .Name("joule_time_to_first_token_seconds")
                .Help("Time from request arrival to its first token.")
                .Register(*registry_)),
      itl_(BuildHistogram()
               .Name("joule_inter_token_latency_seconds")
               .Help("Time between consecutive tokens of a stream.")
               .Register(*registry_)),
      duration_(BuildHistogram()
                    .Name("joule_request_duration_seconds")
                    .Help("Time from request arrival to its last message.")
                    .Register(*registry_)),
      queue_(BuildHistogram()
                 .Name("joule_queue_time_seconds")
                 .Help("Time a request waited before its first step.")
                 .Register(*registry_)),
      step_(BuildHistogram()
                .Name("joule_step_duration_seconds")
                .Help("Device time of one step, by its kind (prefill, decode "
                      "or mixed).")
                .Register(*registry_)),
      requests_(BuildCounter()
                    .Name("joule_requests_total")
                    .Help("Finished requests by API (grpc, http) and status code: gRPC "
                          "code names on gRPC, HTTP status codes on HTTP.")
                    .Register(*registry_)),
      refused_(BuildCounter()
                   .Name("joule_refused_calls_total")
                   .Help("Calls refused before reaching the scheduler, by "
                         "API and reason (unauthenticated, max_concurrent_streams, "
                         "max_http_generations).")
                   .Register(*registry_)),
      routed_(BuildCounter()
                  .Name("joule_routed_requests_total")
                  .Help("Requests placed on a device, by routing policy "
                        "(\"requested\": the request named the device). "
                        "Work moved off a failed device counts again.")
                  .Register(*registry_)),
      write_timeouts_(
          BuildCounter()
              .Name("joule_stream_write_timeouts_total")
              .Help("Streams cancelled because the client read nothing for "
                    "--stream_write_timeout_seconds.")
              .Register(*registry_)
              .Add({})) {}

void Metrics::Step(const std::string& device, const std::string& kind,
                   absl::Duration duration) {
  step_.Add({{"device", device}, {"phase", kind}}, kStep)
      .Observe(absl::ToDoubleSeconds(duration));
}

void Metrics::StepEnergy(const std::string& device,
                         device::EnergySource source, const std::string& phase,
                         std::optional<double> joules) {
  if (!joules.has_value()) return;
  energy_
      .Add({{"device", device}, {"source", SourceLabel(source)},
            {"phase", phase}})
      .Increment(*joules);
}

void Metrics::Routed(const std::string& device, const std::string& policy) {
  routed_.Add({{"device", device}, {"policy", policy}}).Increment();
}

void Metrics::Token(const std::string& device, device::EnergySource source,
                    std::optional<double> joules) {
  generated_.Add({{"device", device}}).Increment();
  if (joules.has_value()) {
    token_energy_
        .Add({{"device", device}, {"source", SourceLabel(source)}}, kJoules)
        .Observe(*joules);
  }
}

void Metrics::PromptTokens(const std::string& device, int tokens) {
  prompt_.Add({{"device", device}}).Increment(tokens);
}

void Metrics::InterTokenLatency(const std::string& device,
                                absl::Duration latency) {
  itl_.Add({{"device", device}}, kItl).Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::Request(const std::string& api, const std::string& device,
                      const std::string& code,
                      std::optional<absl::Duration> ttft, absl::Duration total,
                      std::optional<absl::Duration> queue) {
  requests_.Add({{"api", api}, {"code", code}}).Increment();
  if (device.empty()) return;
  if (ttft.has_value()) {
    ttft_.Add({{"api", api}, {"device", device}}, kTtft)
        .Observe(absl::ToDoubleSeconds(*ttft));
  }
  duration_.Add({{"api", api}, {"device", device}}, kRequest)
      .Observe(absl::ToDoubleSeconds(total));
  if (queue.has_value()) {
    queue_.Add({{"api", api}, {"device", device}}, kQueue)
        .Observe(absl::ToDoubleSeconds(*queue));
  }
}

void Metrics::RefusedCall(const std::string& api, const std::string& reason) {
  refused_.Add({{"api", api}, {"reason", reason}}).Increment();
}

void Metrics::StreamWriteTimeout() { write_timeouts_.Increment(); }

GaugeCollector::GaugeCollector(std::function<std::vector<DeviceGauges>()> read)
    : read_(std::move(read)) {}

std::vector<prometheus::MetricFamily> GaugeCollector::Collect() const {
  const std::vector<DeviceGauges> devices = read_();
  auto family = [](const char* name, const char* help) {
    prometheus::MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = prometheus::MetricType::Gauge;
    return f;
  };
  prometheus::MetricFamily queue =
      family("joule_queue_depth", "Requests waiting for the device.");
  prometheus::MetricFamily batch = family(
      "joule_running_sequences", "Sequences in the device's running batch.");
  prometheus::MetricFamily kv = family(
      "joule_kv_usage_ratio", "Share of the device's KV cache blocks in use.");
  prometheus::MetricFamily power =
      family("joule_device_power_watts",
             "Device power over the last ~10 s, by energy source.");
  prometheus::MetricFamily health =
      family("joule_device_healthy",
             "1 while the device is healthy, 0 while it is re-probed.");
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  for (const DeviceGauges& d : devices) {
    queue.metric.push_back(Gauge(d.queued, {{"device", d.device}}));
    batch.metric.push_back(Gauge(d.running, {{"device", d.device}}));
    kv.metric.push_back(Gauge(d.kv_usage, {{"device", d.device}}));
    health.metric.push_back(Gauge(d.healthy ? 1 : 0, {{"device", d.device}}));
    if (d.source == device::EnergySource::kNone) continue;
    std::vector<Sample>* samples = nullptr;
    for (auto& h : history_) {
      if (h.first == d.device) samples = &h.second;
    }
    if (samples == nullptr) {
      history_.push_back({d.device, {{start_, 0.0}}});
      samples = &history_.back().second;
    }
    samples->push_back({now, d.total_joules});
    // Keep one sample older than the window as the rate's start.
    while (samples->size() > 2 &&
           now - (*samples)[1].time > absl::Seconds(10)) {
      samples->erase(samples->begin());
    }
    const Sample& first = samples->front();
    const double dt = absl::ToDoubleSeconds(now - first.time);
    if (dt <= 0) continue;
    power.metric.push_back(
        Gauge((d.total_joules - first.joules) / dt,
              {{"device", d.device}, {"source", SourceLabel(d.source)}}));
  }
  return {queue, batch, kv, power, health};
}

}  // namespace joule::telemetry
