// The FPGA driver's flags, and its registration under --devices=fpga.
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "device/fpga/fpga_device.h"
#include "device/registry.h"
#include "device/runfiles.h"

ABSL_FLAG(bool, fpga_emulation, false,
          "Run --devices=fpga without a board: XRT's noop device and the "
          "kernel's C simulation, with modeled time and energy.");
ABSL_FLAG(std::string, fpga_xclbin, "",
          "xclbin for --devices=fpga (default: the one built for the model's "
          "shape).");
ABSL_FLAG(int, fpga_device_index, 0, "XRT device index of the board.");

namespace joule::device {
namespace {

absl::StatusOr<std::unique_ptr<Device>> MakeFpga(const DeviceContext& ctx) {
  FpgaOptions o;
  o.xclbin = absl::GetFlag(FLAGS_fpga_xclbin);
  // The kernels the build made, one per shape, ship in this package's
  // runfiles (//device/fpga:xclbins).
  o.xclbin_dir = FindRunfile("device/fpga", ctx.argv0);
  o.emulation = absl::GetFlag(FLAGS_fpga_emulation);
  if (absl::GetFlag(FLAGS_fpga_device_index) < 0) {
    return absl::InvalidArgumentError("--fpga_device_index must be >= 0");
  }
  o.device_index = absl::GetFlag(FLAGS_fpga_device_index);
  return std::make_unique<FpgaDevice>(o);
}

const DeviceRegistration kFpga("fpga", MakeFpga);

}  // namespace
}  // namespace joule::device
