#include "server/server.h"

#include <unistd.h>

#include <algorithm>
#include <climits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "device/registry.h"
#include "grpcpp/health_check_service_interface.h"
#include "spdlog/spdlog.h"

namespace joule::server {
namespace {

// host:port, with IPv6 addresses in brackets.
std::string HostPort(const std::string& host, int port) {
  const bool v6 = host.find(':') != std::string::npos && host[0] != '[';
  return absl::StrCat(v6 ? absl::StrCat("[", host, "]") : host, ":", port);
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') {
    return "localhost";
  }
  return name;
}

// gRPC takes milliseconds as int; INT_MAX is its "never".
int Millis(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return INT_MAX;
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(d), INT_MAX));
}

void ApplyConnectionOptions(const ConnectionOptions& c,
                            grpc::ServerBuilder* builder) {
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                              Millis(c.keepalive_time));
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                              Millis(c.keepalive_timeout));
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                              Millis(c.max_connection_idle));
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                              Millis(c.max_connection_age));
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                              Millis(c.max_connection_age_grace));
  builder->AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      c.min_client_ping_interval > absl::ZeroDuration()
          ? Millis(c.min_client_ping_interval)
          : 0);
}

}  // namespace

absl::StatusOr<std::unique_ptr<JouleServer>> JouleServer::Start(
    const ServerOptions& options) {
  std::unique_ptr<JouleServer> s(new JouleServer());
  auto ckpt = model::Checkpoint::Open(options.checkpoint_path);
  if (!ckpt.ok()) return ckpt.status();
  s->checkpoint_ = *std::move(ckpt);
  const model::Config& config = s->checkpoint_->config();
  auto tok =
      options.tokenizer_path.empty() && s->checkpoint_->gguf() != nullptr
          ? model::Tokenizer::FromGguf(*s->checkpoint_->gguf(),
                                       config.vocab_size)
          : model::Tokenizer::Load(options.tokenizer_path, config.vocab_size);
  if (!tok.ok()) return tok.status();
  s->tokenizer_ = *std::move(tok);
  spdlog::info("model {}: {} version {}, {}, {}, {} parameters",
               options.checkpoint_path,
               s->checkpoint_->gguf() != nullptr ? "GGUF" : "llama2.c",
               s->checkpoint_->version(),
               model::WeightFormatName(s->checkpoint_->format()),
               config.DebugString(), config.ParameterCount());

  if (options.devices.empty()) {
    return absl::InvalidArgumentError("no devices: pass --devices=cpu");
  }
  std::vector<std::unique_ptr<device::Device>> devices;
  for (const std::string& name : options.devices) {
    for (const auto& d : devices) {
      if (d->capabilities().name == name) {
        return absl::InvalidArgumentError(
            absl::StrCat("device '", name, "' is listed twice in --devices"));
      }
    }
    auto dev = options.device_factory
                   ? options.device_factory(name)
                   : device::CreateDevice(name, options.device_context);
    if (!dev.ok()) return dev.status();
    if (absl::Status st = (*dev)->LoadModel(*s->checkpoint_); !st.ok()) {
      return absl::Status(
          st.code(),
          absl::StrCat("device ", name, ": loading the model: ", st.message()));
    }
    spdlog::info("device {} ready: {}", name,
                 (*dev)->capabilities().description);
    devices.push_back(*std::move(dev));
  }
  s->metrics_ = std::make_unique<telemetry::Metrics>();
  std::vector<std::unique_ptr<telemetry::EnergyMeter>> meters;
  for (const auto& d : devices) {
    auto meter = telemetry::MakeMeter(d->capabilities(), options.energy);
    if (!meter.ok()) {
      return absl::Status(
          meter.status().code(),
          absl::StrCat("device ", d->capabilities().name,
                       ": energy meter: ", meter.status().message()));
    }
    spdlog::info("device {} energy: {}", d->capabilities().name,
                 (*meter)->Describe());
    meters.push_back(*std::move(meter));
  }
  scheduler::SchedulerOptions sched = options.scheduler;
  sched.metrics = s->metrics_.get();
  sched.flops_at = [config](int pos) { return config.FlopsPerToken(pos); };
  s->scheduler_ = std::make_unique<scheduler::Scheduler>(
      std::move(devices), std::move(meters), std::move(sched));
  JouleServer* self = s.get();
  s->scheduler_->SetHealthListener(
      [self](const std::string& device, bool healthy) {
        self->OnDeviceHealth(device, healthy);
      });
  s->api_keys_ = options.api_keys;
  ServiceOptions service;
  service.api_keys = &s->api_keys_;
  service.max_concurrent_streams = options.max_concurrent_streams;
  service.stream_write_timeout = options.stream_write_timeout;
  s->runner_ = std::make_unique<GenerationRunner>(
      *s->checkpoint_, *s->tokenizer_, s->scheduler_.get(), s->metrics_.get());
  s->service_ = std::make_unique<JouleService>(s->runner_.get(),
                                               s->metrics_.get(), service);
  s->openai_ =
      std::make_unique<OpenAiApi>(s->runner_.get(), options.chat_template);
  if (options.metrics_port >= 0) {
    if (absl::Status st = s->StartMetrics(options); !st.ok()) {
      s->scheduler_->Shutdown();
      return st;
    }
  }
  absl::Status st = s->StartGrpc(options);
  if (st.ok()) {
    s->instance_name_ = !options.instance_name.empty()
                            ? options.instance_name
                            : absl::StrCat(HostName(), ":", s->port_);
    s->runner_->set_instance(s->instance_name_);
    st = s->StartHttp(options);
  }
  if (!st.ok()) {
    if (s->server_ != nullptr) s->server_->Shutdown();
    s->exposer_.reset();  // Scrapes read the scheduler; stop them first.
    s->scheduler_->Shutdown();
    return st;
  }
  {
    absl::MutexLock lock(&s->health_mu_);
    auto* health = s->server_->GetHealthCheckService();
    bool any = false;
    for (const auto& d : s->scheduler_->Devices()) {
      health->SetServingStatus(DeviceHealthName(d.capabilities.name),
                               d.healthy);
      any = any || d.healthy;
    }
    health->SetServingStatus(kServiceName, any);
  }
  return s;
}

absl::Status JouleServer::StartMetrics(const ServerOptions& options) {
  scheduler::Scheduler* sched = scheduler_.get();
  gauges_ = std::make_shared<telemetry::GaugeCollector>([sched] {
    std::vector<telemetry::DeviceGauges> out;
    for (const auto& d : sched->Devices()) {
      telemetry::DeviceGauges g;
      g.device = d.capabilities.name;
      g.source = d.energy_source;
      g.healthy = d.healthy;
      g.queued = d.queued;
      g.running = d.running;
      g.kv_usage = d.kv_usage;
      g.total_joules = d.total_joules;
      out.push_back(std::move(g));
    }
    return out;
  });
  const MetricsOptions& m = options.metrics;
  const std::string bind = HostPort(m.host, options.metrics_port);
  // civetweb's options: prometheus-cpp's (address, threads) constructor
  // leaves request_timeout_ms at civetweb's 30 s, and each worker thread
  // holds one connection until its request has arrived whole.
  std::vector<std::string> civetweb = {
      "listening_ports",
      bind,
      "num_threads",
      std::to_string(m.threads),
      "request_timeout_ms",
      std::to_string(
          std::max<int64_t>(1, absl::ToInt64Milliseconds(m.request_timeout))),
  };
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(std::move(civetweb));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve metrics on ", bind, " (", e.what(),
        "); pass --metrics_port to choose another, or -1 to turn them off"));
  }
  exposer_->RegisterCollectable(metrics_->registry());
  exposer_->RegisterCollectable(gauges_);
  metrics_port_ = exposer_->GetListeningPorts().front();
  return absl::OkStatus();
}

absl::Status JouleServer::StartGrpc(const ServerOptions& options) {
  grpc::EnableDefaultHealthCheckService(true);
  reflection_ = std::make_unique<ReflectionService>(
      std::vector<std::string>{kServiceName, "grpc.health.v1.Health",
                               ReflectionService::kServiceName},
      &api_keys_, metrics_.get());
  grpc::ServerBuilder builder;
  const std::string address = HostPort(options.host, options.port);
  builder.AddListeningPort(address, MakeServerCredentials(options.tls), &port_);
  ApplyConnectionOptions(options.connection, &builder);
  builder.RegisterService(service_.get());
  builder.RegisterService(reflection_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", address,
        options.tls.has_value()
            ? " (in use? pass --port to choose another; or the TLS "
              "certificate and key are invalid or do not match)"
            : " (in use? pass --port to choose another)"));
  }
  return absl::OkStatus();
}

absl::Status JouleServer::StartHttp(const ServerOptions& options) {
  if (options.http.port < 0) return absl::OkStatus();
  auto http = HttpServer::Start(options.http, openai_.get(), &api_keys_,
                                options.tls, metrics_.get());
  if (!http.ok()) return http.status();
  http_ = *std::move(http);
  return absl::OkStatus();
}

void JouleServer::OnDeviceHealth(const std::string& device, bool healthy) {
  absl::MutexLock lock(&health_mu_);
  if (server_ == nullptr || lame_duck_) return;
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus(DeviceHealthName(device), healthy);
  bool any = false;
  for (const auto& d : scheduler_->Devices()) any = any || d.healthy;
  health->SetServingStatus(kServiceName, any);
}

void JouleServer::EnterLameDuck() {
  absl::MutexLock lock(&health_mu_);
  if (lame_duck_) return;
  lame_duck_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  if (http_ != nullptr) http_->StopReportingReady();
}

void JouleServer::Shutdown(absl::Duration grace) {
  // Health turns NOT_SERVING first so load balancers stop sending traffic.
  EnterLameDuck();
  {
    absl::MutexLock lock(&health_mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  const absl::Time deadline = absl::Now() + grace;
  if (http_ != nullptr) http_->StartDraining();
  server_->Shutdown(absl::ToChronoTime(deadline));
  if (http_ != nullptr) http_->WaitForGenerations(deadline);
  // Ends what still runs (with UNAVAILABLE), which lets the last HTTP
  // streams return before their threads are joined.
  scheduler_->Shutdown();
  server_->Wait();
  if (http_ != nullptr) http_->Stop();
  exposer_.reset();  // Scrapes read the scheduler; stop them first.
}

JouleServer::~JouleServer() {
  if (server_ != nullptr) Shutdown(absl::ZeroDuration());
}

}  // namespace joule::server
