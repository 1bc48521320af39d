// joule_server: serves a llama2.c model over gRPC on the configured devices.
#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
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
          "llama2.c checkpoint (version 0, 1 or 2). Empty: the bundled "
          "stories260K.");
ABSL_FLAG(std::string, tokenizer, "",
          "llama2.c tokenizer.bin. Empty: tok512.bin for the bundled model, "
          "else tokenizer.bin beside --model or the bundled Llama 2 one.");
ABSL_FLAG(std::string, devices, "cpu",
          "Comma-separated devices to serve on: cpu, cpu-ref, riscv, fpga.");
ABSL_FLAG(std::string, riscv_sim_address, "",
          "Address of a running RISC-V simulator (unix:/path or "
          "tcp:host:port). Empty: --devices=riscv starts its own.");
ABSL_FLAG(std::string, riscv_sim_binary, "",
          "The riscv_simd binary to start (default: the one built with the "
          "server).");
ABSL_FLAG(std::string, riscv_sim_config, "",
          "Configuration file for a started simulator (see "
          "device/riscv/sim/occamy.cfg).");
ABSL_FLAG(bool, fpga_emulation, false,
          "Run --devices=fpga without a board: XRT's noop device and the "
          "kernel's C simulation, with modeled time and energy.");
ABSL_FLAG(std::string, fpga_xclbin, "",
          "xclbin for --devices=fpga (default: the one built for the model's "
          "shape).");
ABSL_FLAG(int, fpga_device_index, 0, "XRT device index of the board.");
ABSL_FLAG(int, cpu_threads, 0, "Threads of the cpu device (0: one per core).");
ABSL_FLAG(std::string, cpu_kv_cache, "int8",
          "KV cache entries of the cpu device for int8 checkpoints: int8 "
          "(a scale per position and head; attention reads half the bytes) "
          "or fp16. fp32 checkpoints always keep fp32 entries.");
ABSL_FLAG(int, riscv_max_batch, 16,
          "Sequences the RISC-V device holds at once (its KV slots).");
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
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error.");

namespace scheduler = joule::scheduler;

namespace {

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
      "Serves text generation with per-token latency over gRPC.");
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
  options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  options.device_options.riscv_sim_address =
      absl::GetFlag(FLAGS_riscv_sim_address);
  options.device_options.riscv_sim_binary =
      absl::GetFlag(FLAGS_riscv_sim_binary);
  if (options.device_options.riscv_sim_binary.empty()) {
    options.device_options.riscv_sim_binary =
        joule::server::FindRunfile("device/riscv/sim/riscv_simd", argv[0]);
  }
  options.device_options.riscv_sim_config =
      absl::GetFlag(FLAGS_riscv_sim_config);
  options.device_options.riscv_max_batch = absl::GetFlag(FLAGS_riscv_max_batch);
  options.device_options.fpga_emulation = absl::GetFlag(FLAGS_fpga_emulation);
  options.device_options.cpu_threads = absl::GetFlag(FLAGS_cpu_threads);
  options.device_options.cpu_kv_cache = absl::GetFlag(FLAGS_cpu_kv_cache);
  options.device_options.fpga_xclbin = absl::GetFlag(FLAGS_fpga_xclbin);
  options.device_options.fpga_device_index =
      absl::GetFlag(FLAGS_fpga_device_index);
  if (std::string any = joule::server::FindRunfile(
          "device/fpga/forward_stories260K.xclbin", argv[0]);
      !any.empty()) {
    options.device_options.fpga_xclbin_dir = any.substr(0, any.rfind('/'));
  }
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
  auto server = joule::server::JouleServer::Start(options);
  if (!server.ok()) {
    spdlog::error("{}", server.status().ToString());
    return 1;
  }
  spdlog::info("joule_server listening on {}:{} (devices: {})", options.host,
               (*server)->port(), absl::GetFlag(FLAGS_devices));
  if ((*server)->metrics_port() >= 0) {
    spdlog::info("metrics on http://{}:{}/metrics", options.host,
                 (*server)->metrics_port());
  }

  const int sig = stop->Serving();
  spdlog::info("{}: draining (up to {}s)",
               sig == SIGTERM ? "SIGTERM" : "SIGINT",
               absl::GetFlag(FLAGS_shutdown_grace_seconds));
  (*server)->Shutdown(
      absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds)));
  spdlog::info("stopped");
  return 0;
}
