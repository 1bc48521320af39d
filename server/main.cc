// joule_server: serves a llama2.c model over gRPC on the configured devices.
#include <pthread.h>
#include <signal.h>

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "server/model_paths.h"
#include "server/server.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, host, "0.0.0.0", "Address to listen on.");
ABSL_FLAG(int, port, 50051, "gRPC port (0 picks a free one).");
ABSL_FLAG(int, metrics_port, 9464,
          "Prometheus metrics port (not served yet: per-token telemetry "
          "lands with the telemetry work).");
ABSL_FLAG(std::string, model, "",
          "llama2.c checkpoint (version 0, 1 or 2). Empty: the bundled "
          "stories260K.");
ABSL_FLAG(std::string, tokenizer, "",
          "llama2.c tokenizer.bin. Empty: tok512.bin for the bundled model, "
          "else tokenizer.bin beside --model or the bundled Llama 2 one.");
ABSL_FLAG(std::string, devices, "cpu",
          "Comma-separated devices to serve on: cpu, cpu-ref.");
ABSL_FLAG(int, max_prefill_tokens, 512,
          "Prompt tokens per prefill step; longer prompts run in chunks.");
ABSL_FLAG(int, max_queued_requests, 1024,
          "Requests that may wait for a device; more get RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, shutdown_grace_seconds, 30,
          "On SIGTERM/SIGINT, how long running requests may take to finish.");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Serves text generation with per-token latency over gRPC.");
  absl::ParseCommandLine(argc, argv);
  // Logs go to stderr; stdout stays free for anything a wrapper parses.
  spdlog::set_default_logger(spdlog::stderr_color_mt("joule"));
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));

  // Signals go to a thread that waits for them, never interrupting a step.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto files = joule::server::ResolveModelFiles(
      absl::GetFlag(FLAGS_model), absl::GetFlag(FLAGS_tokenizer), argv[0]);
  if (!files.ok()) {
    spdlog::error("{}", files.status().ToString());
    return 1;
  }
  joule::server::ServerOptions options;
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.checkpoint_path = files->checkpoint;
  options.tokenizer_path = files->tokenizer;
  options.devices =
      absl::StrSplit(absl::GetFlag(FLAGS_devices), ',', absl::SkipWhitespace());
  options.scheduler.max_prefill_tokens =
      absl::GetFlag(FLAGS_max_prefill_tokens);
  options.scheduler.max_queued_requests =
      absl::GetFlag(FLAGS_max_queued_requests);
  if (options.scheduler.max_prefill_tokens < 1 ||
      options.scheduler.max_queued_requests < 1) {
    spdlog::error(
        "--max_prefill_tokens and --max_queued_requests must be >= 1");
    return 1;
  }
  auto server = joule::server::JouleServer::Start(options);
  if (!server.ok()) {
    spdlog::error("{}", server.status().ToString());
    return 1;
  }
  spdlog::info("joule_server listening on {}:{} (devices: {})", options.host,
               (*server)->port(), absl::GetFlag(FLAGS_devices));

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("{}: draining (up to {}s)",
               sig == SIGTERM ? "SIGTERM" : "SIGINT",
               absl::GetFlag(FLAGS_shutdown_grace_seconds));
  (*server)->Shutdown(
      absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds)));
  spdlog::info("stopped");
  return 0;
}
