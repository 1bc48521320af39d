#include "server/server.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "device/registry.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "spdlog/spdlog.h"

namespace joule::server {

absl::StatusOr<std::unique_ptr<JouleServer>> JouleServer::Start(
    const ServerOptions& options) {
  std::unique_ptr<JouleServer> s(new JouleServer());
  auto ckpt = model::Checkpoint::Open(options.checkpoint_path);
  if (!ckpt.ok()) return ckpt.status();
  s->checkpoint_ = *std::move(ckpt);
  const model::Config& config = s->checkpoint_->config();
  auto tok = model::Tokenizer::Load(options.tokenizer_path, config.vocab_size);
  if (!tok.ok()) return tok.status();
  s->tokenizer_ = *std::move(tok);
  spdlog::info("model {}: version {}, {}, {} parameters",
               options.checkpoint_path, s->checkpoint_->version(),
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
                   : device::CreateDevice(name, options.device_options);
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
  s->service_ = std::make_unique<JouleService>(
      *s->checkpoint_, *s->tokenizer_, s->scheduler_.get(), s->metrics_.get());
  if (options.metrics_port >= 0) {
    scheduler::Scheduler* sched_ptr = s->scheduler_.get();
    s->gauges_ = std::make_shared<telemetry::GaugeCollector>([sched_ptr] {
      std::vector<telemetry::DeviceGauges> out;
      for (const auto& d : sched_ptr->Devices()) {
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
    const std::string bind =
        absl::StrCat(options.host, ":", options.metrics_port);
    try {
      s->exposer_ = std::make_unique<prometheus::Exposer>(bind, 2);
    } catch (const std::exception& e) {
      s->scheduler_->Shutdown();
      return absl::UnavailableError(absl::StrCat(
          "cannot serve metrics on ", bind, " (", e.what(),
          "); pass --metrics_port to choose another, or -1 to turn them off"));
    }
    s->exposer_->RegisterCollectable(s->metrics_->registry());
    s->exposer_->RegisterCollectable(s->gauges_);
    s->metrics_port_ = s->exposer_->GetListeningPorts().front();
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address =
      absl::StrCat(options.host.find(':') != std::string::npos
                       ? absl::StrCat("[", options.host, "]")
                       : options.host,
                   ":", options.port);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(),
                           &s->port_);
  builder.RegisterService(s->service_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    s->scheduler_->Shutdown();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address,
                     " (in use? pass --port to choose another)"));
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

void JouleServer::OnDeviceHealth(const std::string& device, bool healthy) {
  absl::MutexLock lock(&health_mu_);
  if (server_ == nullptr || shut_down_) return;
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus(DeviceHealthName(device), healthy);
  bool any = false;
  for (const auto& d : scheduler_->Devices()) any = any || d.healthy;
  health->SetServingStatus(kServiceName, any);
}

void JouleServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&health_mu_);
    if (shut_down_) return;
    shut_down_ = true;
    // Health turns NOT_SERVING first so load balancers stop sending traffic.
    server_->GetHealthCheckService()->SetServingStatus(false);
  }
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  scheduler_->Shutdown();
  server_->Wait();
  exposer_.reset();  // Scrapes read the scheduler; stop them first.
}

JouleServer::~JouleServer() {
  if (server_ != nullptr) Shutdown(absl::ZeroDuration());
}

}  // namespace joule::server
