#include "device/registry.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "device/cpu/reference_engine.h"
#include "device/fpga/fpga_device.h"
#include "device/riscv/riscv_device.h"

namespace joule::device {

absl::StatusOr<std::unique_ptr<Device>> CreateDevice(absl::string_view name,
                                                     const DeviceOptions& options) {
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
    o.daemon_binary = options.riscv_sim_binary;
    o.daemon_config = options.riscv_sim_config;
    o.max_batch_size = options.riscv_max_batch;
    return std::make_unique<RiscvDevice>(o);
  }
  if (name == "cpu" || name == "cpu-ref") {
    // Until the fast CPU engine lands, "cpu" is served by the reference.
    ReferenceEngine::Options options;
    options.name = std::string(name);
    return std::make_unique<ReferenceEngine>(options);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown device '", name,
      "'; known devices: ", absl::StrJoin(KnownDeviceNames(), ", ")));
}

std::vector<std::string> KnownDeviceNames() { return {"cpu", "cpu-ref", "riscv", "fpga"}; }

}  // namespace joule::device
