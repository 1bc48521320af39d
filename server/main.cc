// joule_server: serves a llama2.c model over gRPC and an OpenAI-compatible
// HTTP API on the configured devices.
#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "scheduler/router.h"
#include "server/model_paths.h"
#include "server/server.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"
#include "telemetry/meter_factory.h"

ABSL_FLAG(std::string, host, "0.0.0.0", "Address to listen on.");
ABSL_FLAG(int, port, 50051, "gRPC port (0 picks a free one).");
ABSL_FLAG(int, metrics_port, 9464,
          "Prometheus metrics on http://<host>:<port>/metrics (0 picks a "
          "free port, -1 turns them off).");
ABSL_FLAG(std::string, instance_name, "",
          "This replica's name, reported with every response "
          "(server_instance) and in model info. Empty: hostname:port (the "
          "gRPC port).");
ABSL_FLAG(int, http_port, 8000,
          "OpenAI-compatible HTTP API on this port (0 picks a free one, -1 "
          "turns it off); same TLS and API keys as the gRPC port.");
ABSL_FLAG(int, http_threads, 128,
          "HTTP worker threads; each holds one connection while it is open.");
ABSL_FLAG(int, http_max_concurrent_generations, 96,
          "HTTP completion calls running at once; more get 429. Must be below "
          "--http_threads, so /health always finds a thread.");
ABSL_FLAG(int64_t, http_max_body_bytes, 1 << 20,
          "Largest HTTP request body; larger ones get 413.");
ABSL_FLAG(double, http_read_timeout_seconds, 10,
          "An HTTP request whose bytes stop arriving for this long is "
          "dropped.");
ABSL_FLAG(double, http_keep_alive_timeout_seconds, 5,
          "An idle HTTP keep-alive connection is closed after this.");
ABSL_FLAG(std::string, chat_template, "",
          "JSON file with the chat template for /v1/chat/completions "
          "(docs/http_api.md). Empty: the plain default.");
ABSL_FLAG(std::string, cpu_energy, "auto",
          "CPU energy: auto (Intel RAPL if readable, else the power model), "
          "rapl (measured, or fail), model.");
ABSL_FLAG(std::string, rapl_root, "/sys/class/powercap",
          "Where the powercap sysfs tree is.");
ABSL_FLAG(std::string, energy_model, "",
          "Power models for devices without a meter, as "
          "device=active_watts:idle_watts,... (default 15:5 W); their "
          "figures are labeled modeled.");
ABSL_FLAG(std::string, model, "",
          "llama2.c checkpoint (version 0, 1 or 2) or llama GGUF file. "
          "Empty: the bundled stories260K.");
ABSL_FLAG(std::string, tokenizer, "",
          "llama2.c tokenizer.bin. Empty: the GGUF file's own, tok512.bin "
          "for the bundled model, else tokenizer.bin beside --model or the "
          "bundled Llama 2 one.");
ABSL_FLAG(std::string, devices, "cpu",
          "Comma-separated devices to serve on: cpu, cpu-ref, riscv, fpga. "
          "Each driver's own flags (--cpu_*, --riscv_*, --fpga_*) are listed "
          "with its file under device/.");
ABSL_FLAG(int, max_batch_size, 64,
          "Most sequences a device runs in one step (the device's own limit "
          "also applies).");
ABSL_FLAG(int, max_step_tokens, 512,
          "Tokens one step may compute: a decode token per running sequence "
          "first, prompt chunks share the rest, so long prompts prefill in "
          "chunks without stalling running streams.");
ABSL_FLAG(int, max_queued_requests, 1024,
          "Requests that may wait for a device; more get RESOURCE_EXHAUSTED.");
ABSL_FLAG(int64_t, max_queued_tokens, 1 << 20,
          "Prompt tokens that may wait for a device; more get "
          "RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, kv_block_size, 16, "Positions per KV cache block.");
ABSL_FLAG(std::string, routing, "latency",
          "How requests that name no device are placed: latency (least "
          "expected time per token), energy (least expected J/token), "
          "round_robin.");
ABSL_FLAG(double, step_timeout_seconds, 60,
          "A device step running longer is treated as hung: the device is "
          "marked unhealthy and its requests move to other devices.");
ABSL_FLAG(double, priority_step_seconds, 1,
          "Waiting time one priority level is worth (aging).");
ABSL_FLAG(int, shutdown_grace_seconds, 30,
          "On SIGTERM/SIGINT, how long running requests may take to finish.");
ABSL_FLAG(double, shutdown_delay_seconds, 0,
          "On SIGTERM/SIGINT, how long to report NOT_SERVING (gRPC health, "
          "HTTP /health 503) while still serving every call, before "
          "refusing new ones: longer than the load balancer's health poll, "
          "so it stops sending first (deploy/README.md).");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error.");

// Security and resource limits (docs/security.md).
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain for TLS on the gRPC port (with "
          "--tls_key_file). Empty: plaintext.");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file.");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA certificates: clients must present a certificate signed by "
          "one of them (mutual TLS). Needs --tls_cert_file.");
ABSL_FLAG(std::string, api_key, "",
          "Comma-separated API keys; calls must send 'authorization: Bearer "
          "<key>'. Command lines are visible to other local users: prefer "
          "--api_key_file. Empty (and no file): no key is asked for.");
ABSL_FLAG(std::string, api_key_file, "",
          "File of API keys, one per line (blank lines and # comments "
          "ignored), in addition to --api_key.");
ABSL_FLAG(int, max_concurrent_streams, 512,
          "Generate/GenerateStream calls running at once; more get "
          "RESOURCE_EXHAUSTED (0: no limit).");
ABSL_FLAG(double, stream_write_timeout_seconds, 30,
          "A stream whose client reads nothing for this long (a write cannot "
          "complete) is cancelled and its sequence freed (0: never).");
ABSL_FLAG(double, keepalive_time_seconds, 60,
          "Ping a connection with calls in flight after this long without "
          "traffic (0: never).");
ABSL_FLAG(double, keepalive_timeout_seconds, 20,
          "Close a connection whose keepalive ping is not answered within "
          "this.");
ABSL_FLAG(double, max_connection_idle_seconds, 300,
          "Close a connection with no call for this long (0: never).");
ABSL_FLAG(double, max_connection_age_seconds, 1800,
          "Ask a connection older than this to reconnect (GOAWAY; 0: never).");
ABSL_FLAG(double, max_connection_age_grace_seconds, 120,
          "After --max_connection_age, how long running calls may finish "
          "before the connection is closed.");
ABSL_FLAG(double, min_client_ping_interval_seconds, 10,
          "Client keepalive pings closer together than this are refused "
          "(repeated: the connection is closed).");
ABSL_FLAG(std::string, metrics_host, "127.0.0.1",
          "Address the metrics endpoint listens on. /metrics has no "
          "authentication: keep it on loopback unless Prometheus scrapes "
          "from another machine.");
ABSL_FLAG(int, metrics_threads, 8,
          "Metrics HTTP worker threads; each holds one connection until its "
          "request has arrived.");
ABSL_FLAG(double, metrics_request_timeout_seconds, 10,
          "A metrics request not received whole within this is dropped.");

namespace scheduler = joule::scheduler;
namespace server = joule::server;

namespace {

// TLS files and API keys, checked before anything slow starts.
absl::Status SecurityFromFlags(server::ServerOptions* o) {
  auto tls = server::LoadTls({absl::GetFlag(FLAGS_tls_cert_file),
                              absl::GetFlag(FLAGS_tls_key_file),
                              absl::GetFlag(FLAGS_tls_client_ca_file)});
  if (!tls.ok()) return tls.status();
  o->tls = *std::move(tls);
  auto keys = server::ApiKeys::Load(absl::GetFlag(FLAGS_api_key),
                                    absl::GetFlag(FLAGS_api_key_file));
  if (!keys.ok()) {
    return absl::Status(
        keys.status().code(),
        absl::StrCat("--api_key/--api_key_file: ", keys.status().message()));
  }
  o->api_keys = *std::move(keys);
  return absl::OkStatus();
}

absl::Duration SecondsFlag(const absl::Flag<double>& flag) {
  return absl::Seconds(absl::GetFlag(flag));
}

absl::Status LimitsFromFlags(server::ServerOptions* o) {
  o->max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  o->stream_write_timeout = SecondsFlag(FLAGS_stream_write_timeout_seconds);
  server::ConnectionOptions& c = o->connection;
  c.keepalive_time = SecondsFlag(FLAGS_keepalive_time_seconds);
  c.keepalive_timeout = SecondsFlag(FLAGS_keepalive_timeout_seconds);
  c.max_connection_idle = SecondsFlag(FLAGS_max_connection_idle_seconds);
  c.max_connection_age = SecondsFlag(FLAGS_max_connection_age_seconds);
  c.max_connection_age_grace =
      SecondsFlag(FLAGS_max_connection_age_grace_seconds);
  c.min_client_ping_interval =
      SecondsFlag(FLAGS_min_client_ping_interval_seconds);
  o->metrics.host = absl::GetFlag(FLAGS_metrics_host);
  o->metrics.threads = absl::GetFlag(FLAGS_metrics_threads);
  o->metrics.request_timeout =
      SecondsFlag(FLAGS_metrics_request_timeout_seconds);
  const absl::Duration zero = absl::ZeroDuration();
  if (o->max_concurrent_streams < 0 || o->stream_write_timeout < zero ||
      c.keepalive_time < zero || c.max_connection_idle < zero ||
      c.max_connection_age < zero || c.max_connection_age_grace < zero ||
      c.min_client_ping_interval < zero) {
    return absl::InvalidArgumentError(
        "--max_concurrent_streams, --stream_write_timeout_seconds, "
        "--keepalive_time_seconds, --max_connection_idle_seconds, "
        "--max_connection_age_seconds, --max_connection_age_grace_seconds "
        "and --min_client_ping_interval_seconds must be >= 0 (0: off)");
  }
  if (c.keepalive_timeout <= zero || o->metrics.threads < 1 ||
      o->metrics.request_timeout <= zero) {
    return absl::InvalidArgumentError(
        "--keepalive_timeout_seconds, --metrics_threads and "
        "--metrics_request_timeout_seconds must be positive");
  }
  return absl::OkStatus();
}

absl::Status HttpFromFlags(server::ServerOptions* o) {
  server::HttpOptions& h = o->http;
  h.host = o->host;
  h.port = absl::GetFlag(FLAGS_http_port);
  h.threads = absl::GetFlag(FLAGS_http_threads);
  h.max_generations = absl::GetFlag(FLAGS_http_max_concurrent_generations);
  const int64_t body = absl::GetFlag(FLAGS_http_max_body_bytes);
  h.read_timeout = SecondsFlag(FLAGS_http_read_timeout_seconds);
  h.keep_alive_timeout = SecondsFlag(FLAGS_http_keep_alive_timeout_seconds);
  // httplib has no "never": a day stands for it.
  h.write_timeout = o->stream_write_timeout > absl::ZeroDuration()
                        ? o->stream_write_timeout
                        : absl::Hours(24);
  if (h.port < -1 || h.port > 65535) {
    return absl::InvalidArgumentError(
        "--http_port must be a port number, 0 (a free one) or -1 (off)");
  }
  if (h.threads < 2 || h.max_generations < 1 ||
      h.max_generations >= h.threads) {
    return absl::InvalidArgumentError(
        "--http_max_concurrent_generations must be at least 1 and below "
        "--http_threads, so /health and refusals always find a thread");
  }
  if (body < 1 || body > (int64_t{1} << 30) ||
      h.read_timeout <= absl::ZeroDuration() ||
      h.keep_alive_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--http_max_body_bytes must be in 1..1073741824, and "
        "--http_read_timeout_seconds and --http_keep_alive_timeout_seconds "
        "positive");
  }
  h.max_body_bytes = static_cast<size_t>(body);
  const std::string chat_template = absl::GetFlag(FLAGS_chat_template);
  if (!chat_template.empty()) {
    auto t = server::ChatTemplate::Load(chat_template);
    if (!t.ok()) return t.status();
    o->chat_template = *std::move(t);
  }
  return absl::OkStatus();
}

// Says so at start-up when the gRPC port is reachable from other machines
// without the protection an operator probably expects.
void WarnIfExposed(const server::ServerOptions& o) {
  if (server::IsLoopbackHost(o.host)) return;
  if (!o.api_keys.enabled()) {
    spdlog::warn(
        "listening on {} with no API key: anyone who can reach the port can "
        "generate. Pass --api_key_file (docs/security.md), or --host=127.0.0.1",
        o.host);
  } else if (!o.tls.has_value()) {
    spdlog::warn(
        "listening on {} without TLS: API keys cross the network in "
        "plaintext. Pass --tls_cert_file and --tls_key_file, or terminate "
        "TLS in front of the server",
        o.host);
  }
}

// Waits for SIGINT/SIGTERM on its own thread. Before Serving() is called a
// signal exits the process (nothing to drain yet); after it, Serving()
// returns the signal so main can drain.
class SignalWaiter {
 public:
  explicit SignalWaiter(sigset_t signals) : signals_(signals) {
    std::thread([this] { Wait(); }).detach();
  }

  int Serving() {
    absl::MutexLock lock(&mu_);
    serving_ = true;
    mu_.Await(absl::Condition(
        +[](int* sig) { return *sig != 0; }, &signal_));
    return signal_;
  }

 private:
  void Wait() {
    int sig = 0;
    sigwait(&signals_, &sig);
    absl::MutexLock lock(&mu_);
    if (!serving_) {
      spdlog::warn("{} during start-up: exiting",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT");
      spdlog::default_logger()->flush();
      std::_Exit(128 + sig);
    }
    signal_ = sig;
  }

  const sigset_t signals_;
  absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  int signal_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Serves text generation with per-token latency and energy over gRPC "
      "and an OpenAI-compatible HTTP API.");
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built without NDEBUG, which leaves deadlock detection
  // on: every absl::Mutex lock, gRPC's own included, updated a process-wide
  // lock graph. Tests keep it; serving does not need it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Logs go to stderr; stdout stays free for anything a wrapper parses.
  spdlog::set_default_logger(spdlog::stderr_color_mt("joule"));
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));

  // Signals go to a thread that waits for them, never interrupting a step.
  // It runs from the start: a signal during start-up (a slow model load, a
  // device that does not answer) ends the process at once.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // Never destroyed: its thread may still sit in sigwait() when main
  // returns. A static pointer keeps it reachable, so LeakSanitizer agrees.
  static SignalWaiter* const stop = new SignalWaiter(signals);

  joule::server::ServerOptions options;
  if (absl::Status s = SecurityFromFlags(&options); !s.ok()) {
    spdlog::error("{}", std::string(s.message()));
    return 1;
  }
  if (absl::Status s = LimitsFromFlags(&options); !s.ok()) {
    spdlog::error("{}", std::string(s.message()));
    return 1;
  }
  auto files = joule::server::ResolveModelFiles(
      absl::GetFlag(FLAGS_model), absl::GetFlag(FLAGS_tokenizer), argv[0]);
  if (!files.ok()) {
    spdlog::error("{}", files.status().ToString());
    return 1;
  }
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.instance_name = absl::GetFlag(FLAGS_instance_name);
  if (absl::Status s = HttpFromFlags(&options); !s.ok()) {
    spdlog::error("{}", std::string(s.message()));
    return 1;
  }
  options.checkpoint_path = files->checkpoint;
  options.tokenizer_path = files->tokenizer;
  options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  // Each driver reads its own flags (device/*/..._registration.cc).
  options.device_context.argv0 = argv[0];
  options.energy.cpu_energy = absl::GetFlag(FLAGS_cpu_energy);
  options.energy.rapl_root = absl::GetFlag(FLAGS_rapl_root);
  auto models =
      joule::telemetry::ParsePowerModels(absl::GetFlag(FLAGS_energy_model));
  if (!models.ok()) {
    spdlog::error("--energy_model: {}", models.status().ToString());
    return 1;
  }
  options.energy.models = *models;
  options.devices =
      absl::StrSplit(absl::GetFlag(FLAGS_devices), ',', absl::SkipWhitespace());
  scheduler::SchedulerOptions& sched = options.scheduler;
  sched.max_batch_size = absl::GetFlag(FLAGS_max_batch_size);
  sched.max_step_tokens = absl::GetFlag(FLAGS_max_step_tokens);
  sched.max_queued_requests = absl::GetFlag(FLAGS_max_queued_requests);
  sched.max_queued_tokens = absl::GetFlag(FLAGS_max_queued_tokens);
  sched.kv_block_size = absl::GetFlag(FLAGS_kv_block_size);
  sched.step_timeout = absl::Seconds(absl::GetFlag(FLAGS_step_timeout_seconds));
  sched.priority_step =
      absl::Seconds(absl::GetFlag(FLAGS_priority_step_seconds));
  auto routing = scheduler::ParseRoutingPolicy(absl::GetFlag(FLAGS_routing));
  if (!routing.ok()) {
    spdlog::error("--routing: {}", routing.status().ToString());
    return 1;
  }
  sched.routing = *routing;
  if (sched.max_batch_size < 1 || sched.max_step_tokens < 1 ||
      sched.max_queued_requests < 1 || sched.max_queued_tokens < 1 ||
      sched.kv_block_size < 1 || sched.step_timeout <= absl::ZeroDuration()) {
    spdlog::error(
        "--max_batch_size, --max_step_tokens, --max_queued_requests, "
        "--max_queued_tokens, --kv_block_size and --step_timeout_seconds "
        "must be positive");
    return 1;
  }
  const double delay = absl::GetFlag(FLAGS_shutdown_delay_seconds);
  if (absl::GetFlag(FLAGS_shutdown_grace_seconds) < 0 || !(delay >= 0) ||
      delay > 3600) {
    spdlog::error(
        "--shutdown_grace_seconds must be >= 0 and --shutdown_delay_seconds "
        "in 0..3600");
    return 1;
  }
  WarnIfExposed(options);
  auto server = joule::server::JouleServer::Start(options);
  if (!server.ok()) {
    spdlog::error("{}", server.status().ToString());
    return 1;
  }
  spdlog::info("joule_server listening on {}:{} (devices: {}; instance {})",
               options.host, (*server)->port(), absl::GetFlag(FLAGS_devices),
               (*server)->instance_name());
  spdlog::info("gRPC port: {}, {}",
               !options.tls.has_value() ? "plaintext"
               : options.tls->client_ca_pem.empty()
                   ? "TLS"
                   : "mutual TLS (client certificates required)",
               options.api_keys.enabled()
                   ? absl::StrCat(options.api_keys.size(), " API key(s)")
                   : std::string("no API key"));
  if ((*server)->http_port() >= 0) {
    spdlog::info(
        "OpenAI-compatible HTTP API on {}://{}:{}/v1 ({})",
        options.tls.has_value() ? "https" : "http", options.host,
        (*server)->http_port(),
        options.api_keys.enabled() ? "API key required" : "no API key");
  }
  if ((*server)->metrics_port() >= 0) {
    spdlog::info("metrics on http://{}:{}/metrics", options.metrics.host,
                 (*server)->metrics_port());
  }

  const int sig = stop->Serving();
  const char* sig_name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
  if (delay > 0) {
    spdlog::info(
        "{}: NOT_SERVING, still serving for {}s (--shutdown_delay_seconds)",
        sig_name, delay);
    (*server)->EnterLameDuck();
    absl::SleepFor(absl::Seconds(delay));
  }
  spdlog::info("{}: draining (up to {}s)", sig_name,
               absl::GetFlag(FLAGS_shutdown_grace_seconds));
  (*server)->Shutdown(
      absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds)));
  spdlog::info("stopped");
  return 0;
}
