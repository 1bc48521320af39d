// The RISC-V driver's flags, and its registration under --devices=riscv.
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "device/registry.h"
#include "device/riscv/riscv_device.h"
#include "device/riscv/sim/token.h"
#include "device/runfiles.h"

ABSL_FLAG(std::string, riscv_sim_address, "",
          "Address of a running RISC-V simulator (unix:/path or "
          "tcp:host:port). Empty: --devices=riscv starts its own.");
ABSL_FLAG(std::string, riscv_sim_token_file, "",
          "With --riscv_sim_address: the file holding that simulator's token "
          "(the one its --token_file names). A simulator the server starts "
          "gets a fresh random token instead.");
ABSL_FLAG(std::string, riscv_sim_binary, "",
          "The riscv_simd binary to start (default: the one built with the "
          "server).");
ABSL_FLAG(std::string, riscv_sim_config, "",
          "Configuration file for a started simulator (see "
          "device/riscv/sim/occamy.cfg).");
ABSL_FLAG(std::string, riscv_engine, "",
          "How the simulator executes kernels: tile (the fast tile-level "
          "model; the default) or iss (the cross-compiled kernels on the "
          "instruction-level Snitch cluster simulator; fp32, slower). Passed "
          "to a started simulator; one at --riscv_sim_address must run it.");
ABSL_FLAG(int, riscv_max_batch, 16,
          "Sequences the RISC-V device holds at once (its KV slots).");

namespace joule::device {
namespace {

absl::StatusOr<std::unique_ptr<Device>> MakeRiscv(const DeviceContext& ctx) {
  RiscvOptions o;
  o.name = "riscv";
  o.address = absl::GetFlag(FLAGS_riscv_sim_address);
  o.token_file = absl::GetFlag(FLAGS_riscv_sim_token_file);
  o.daemon_binary = absl::GetFlag(FLAGS_riscv_sim_binary);
  if (o.daemon_binary.empty()) {
    o.daemon_binary = FindRunfile("device/riscv/sim/riscv_simd", ctx.argv0);
  }
  o.daemon_config = absl::GetFlag(FLAGS_riscv_sim_config);
  o.engine = absl::GetFlag(FLAGS_riscv_engine);
  if (!o.engine.empty() && o.engine != "tile" && o.engine != "iss") {
    return absl::InvalidArgumentError(
        absl::StrCat("--riscv_engine=", o.engine, ": expected tile or iss"));
  }
  o.max_batch_size = absl::GetFlag(FLAGS_riscv_max_batch);
  if (o.max_batch_size < 1) {
    return absl::InvalidArgumentError("--riscv_max_batch must be positive");
  }
  if (!o.address.empty()) {
    // Said at start-up, not at the device's first probe.
    if (o.token_file.empty()) {
      return absl::InvalidArgumentError(
          "--riscv_sim_address needs --riscv_sim_token_file: the simulator "
          "refuses clients without its token");
    }
    if (auto token = riscv::ReadTokenFile(o.token_file); !token.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--riscv_sim_token_file: ", token.status().message()));
    }
  }
  return std::make_unique<RiscvDevice>(o);
}

const DeviceRegistration kRiscv("riscv", MakeRiscv);

}  // namespace
}  // namespace joule::device
