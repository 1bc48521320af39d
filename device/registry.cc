#include "device/registry.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "device/cpu/fast_engine.h"
#include "device/cpu/reference_engine.h"
#include "device/fpga/fpga_device.h"
#include "device/riscv/riscv_device.h"

namespace joule::device {

absl::StatusOr<std::unique_ptr<Device>> CreateDevice(
    absl::string_view name, const DeviceOptions& options) {
  if (name == "fpga") {
    FpgaOptions o;
    o.xclbin = options.fpga_xclbin;
    o.xclbin_dir = options.fpga_xclbin_dir;
    o.emulation = options.fpga_emulation;
    o.device_index = options.fpga_device_index;
    return std::make_unique<FpgaDevice>(o);
  }
  if (name == "riscv") {
    RiscvOptions o;
    o.name = std::string(name);
    o.address = options.riscv_sim_address;
    o.token_file = options.riscv_sim_token_file;
    o.daemon_binary = options.riscv_sim_binary;
    o.daemon_config = options.riscv_sim_config;
    o.max_batch_size = options.riscv_max_batch;
    return std::make_unique<RiscvDevice>(o);
  }
  if (name == "cpu") {
    FastEngine::Options o;
    o.name = "cpu";
    o.threads = options.cpu_threads;
    o.kv_cache = options.cpu_kv_cache;
    return std::make_unique<FastEngine>(o);
  }
  if (name == "cpu-ref") {
    ReferenceEngine::Options o;
    o.name = "cpu-ref";
    return std::make_unique<ReferenceEngine>(o);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown device '", name,
      "'; known devices: ", absl::StrJoin(KnownDeviceNames(), ", ")));
}

std::vector<std::string> KnownDeviceNames() {
  return {"cpu", "cpu-ref", "riscv", "fpga"};
}

}  // namespace joule::device
