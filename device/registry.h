#ifndef JOULE_DEVICE_REGISTRY_H_
#define JOULE_DEVICE_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "device/device.h"

namespace joule::device {

// What drivers need from the command line.
struct DeviceOptions {
  // RISC-V simulator: a running daemon's address, else the binary to start.
  std::string riscv_sim_address;
  std::string riscv_sim_token_file;  // The running daemon's --token_file.
  std::string riscv_sim_binary;
  std::string riscv_sim_config;
  int riscv_max_batch = 16;
  // FPGA: the xclbin (or the directory of built ones), and emulation.
  std::string fpga_xclbin;
  std::string fpga_xclbin_dir;
  bool fpga_emulation = false;
  unsigned fpga_device_index = 0;
  int cpu_threads = 0;                // 0: one per core.
  std::string cpu_kv_cache = "int8";  // int8 models' KV entries: or "fp16".
};

// Creates a driver from its name on the command line (`--devices`).
// Known: "cpu" (the CPU engine), "cpu-ref" (the reference engine), "riscv"
// (the simulated RISC-V many-core), "fpga" (an FPGA through XRT).
absl::StatusOr<std::unique_ptr<Device>> CreateDevice(
    absl::string_view name, const DeviceOptions& options = {});

std::vector<std::string> KnownDeviceNames();

}  // namespace joule::device

#endif  // JOULE_DEVICE_REGISTRY_H_
