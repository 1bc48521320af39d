// riscv_simd: the simulated many-tiny-core RISC-V system, served over the
// bridge protocol (protocol.md).
//   riscv_simd --listen=unix:/tmp/joule-riscv.sock --token_file=token
//              [--config=occamy.cfg]
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/clock.h"
#include "device/riscv/sim/sim_config.h"
#include "device/riscv/sim/sim_server.h"
#include "device/riscv/sim/token.h"
#include "device/runfiles.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "tcp:127.0.0.1:7411",
          "unix:/path (created 0600) or tcp:host:port (port 0 picks a free "
          "one; loopback only unless --allow_remote_listen).");
ABSL_FLAG(std::string, token_file, "",
          "File holding the shared token every client's HELLO must carry "
          "(required; joule_server reads the same file through "
          "--riscv_sim_token_file).");
ABSL_FLAG(
    bool, allow_remote_listen, false,
    "Allow --listen=tcp: on an address other than loopback (127.0.0.0/8). "
    "The token crosses the network in the clear.");
ABSL_FLAG(std::string, config, "",
          "Configuration file (key = value); empty: defaults.");
ABSL_FLAG(std::string, precision, "",
          "Override the configuration's precision.");
ABSL_FLAG(std::string, riscv_engine, "tile",
          "How kernels execute: tile (the tile-level model: the reference's "
          "math, modeled cycles) or iss (the cross-compiled kernels on the "
          "instruction-level Snitch cluster simulator: their own arithmetic, "
          "simulated cycles and energy; fp32 only, and slower).");
ABSL_FLAG(std::string, kernel_image, "",
          "With --riscv_engine=iss: the kernel image (default: the "
          "kernels.elf built with this binary).");
ABSL_FLAG(std::string, cost_table, "",
          "With --riscv_engine=tile: the fp32 utilizations the tile model "
          "charges, measured on the ISS (device/riscv/sim/cost_table.txt, "
          "the default, found beside this binary); none: the "
          "configuration's constant utilizations.");
ABSL_FLAG(int, parent_pid, 0,
          "Exit when this process ends (joule_server passes its own pid, so "
          "a server that crashes or is killed leaves no simulator behind). "
          "0: run until SIGTERM/SIGINT.");

namespace {

// Set (before the SIGTERM) by the watcher once the owning process ended.
std::atomic<bool> owner_ended{false};

// Sends this process SIGTERM once `pid` has ended, so the main thread's
// sigwait shuts the server down as for any stop. A parent's end is seen at
// once (we are reparented even while it is an unreaped zombie); any other
// process's once it is reaped. The thread touches nothing else: the process
// may be exiting around it.
void ExitWithProcess(pid_t pid) {
  const bool is_parent = getppid() == pid;
  std::thread([pid, is_parent] {
    while (is_parent ? getppid() == pid : (kill(pid, 0) == 0 || errno != ESRCH))
      absl::SleepFor(absl::Milliseconds(200));
    owner_ended = true;
    kill(getpid(), SIGTERM);
  }).detach();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Simulated Occamy-like RISC-V many-core system.");
  absl::ParseCommandLine(argc, argv);
  spdlog::set_default_logger(spdlog::stderr_color_mt("riscv_simd"));
  joule::riscv::SimConfig config;
  if (!absl::GetFlag(FLAGS_config).empty()) {
    auto c = joule::riscv::LoadSimConfig(absl::GetFlag(FLAGS_config));
    if (!c.ok()) {
      spdlog::error("{}", c.status().ToString());
      return 1;
    }
    config = *c;
  }
  if (!absl::GetFlag(FLAGS_precision).empty()) {
    auto p = joule::riscv::ParsePrecision(absl::GetFlag(FLAGS_precision));
    if (!p.ok()) {
      spdlog::error("{}", p.status().ToString());
      return 1;
    }
    config.precision = *p;
  }
  const std::string token_file = absl::GetFlag(FLAGS_token_file);
  if (token_file.empty()) {
    spdlog::error(
        "--token_file is required: clients authenticate with the token it "
        "holds");
    return 1;
  }
  auto token = joule::riscv::ReadTokenFile(token_file);
  if (!token.ok()) {
    spdlog::error("--token_file: {}", std::string(token.status().message()));
    return 1;
  }
  struct stat st;
  if (::stat(token_file.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    spdlog::warn("token file {} is readable by other users (chmod 600 it)",
                 token_file);
  }
  joule::riscv::SimServerOptions options;
  options.token = *std::move(token);
  options.engine = absl::GetFlag(FLAGS_riscv_engine);
  options.kernel_image = absl::GetFlag(FLAGS_kernel_image);
  options.cost_table = absl::GetFlag(FLAGS_cost_table);
  if (options.cost_table == "none") {
    options.cost_table.clear();
  } else if (options.cost_table.empty()) {
    options.cost_table =
        joule::device::FindRunfile("device/riscv/sim/cost_table.txt", argv[0]);
    if (options.cost_table.empty()) {
      spdlog::warn(
          "device/riscv/sim/cost_table.txt not found beside riscv_simd: the "
          "tile model charges its constant utilizations");
    }
  }
  if (options.kernel_image.empty()) {
    options.kernel_image = joule::device::FindRunfile(
        "device/riscv/sim/kernels/kernels.elf", argv[0]);
  }
  options.allow_remote_listen = absl::GetFlag(FLAGS_allow_remote_listen);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto server = joule::riscv::SimServer::Start(absl::GetFlag(FLAGS_listen),
                                               config, options);
  if (!server.ok()) {
    spdlog::error("{}", server.status().ToString());
    return 1;
  }
  spdlog::info("{}", config.Describe());
  spdlog::info("riscv_simd listening on {}", (*server)->address());
  if (const int parent = absl::GetFlag(FLAGS_parent_pid); parent > 0) {
    ExitWithProcess(parent);
  }
  std::thread serve([&] { (*server)->Serve(); });
  int sig = 0;
  sigwait(&signals, &sig);
  if (owner_ended) {
    spdlog::info("process {} ended: stopping", absl::GetFlag(FLAGS_parent_pid));
  }
  (*server)->Stop();
  serve.join();
  return 0;
}
