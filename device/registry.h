#ifndef JOULE_DEVICE_REGISTRY_H_
#define JOULE_DEVICE_REGISTRY_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "device/device.h"

namespace joule::device {

// What every driver may need from the program that creates it. Anything
// driver-specific is the driver's own flag, defined and parsed in its
// folder (after ggml's backend registry: the core knows no driver option).
struct DeviceContext {
  // The program's argv[0], to find files the build ships beside it
  // (runfiles: the RISC-V simulator, the FPGA kernels).
  std::string argv0;
};

using DeviceFactory = std::function<absl::StatusOr<std::unique_ptr<Device>>(
    const DeviceContext& context)>;

// Adds a driver under the name --devices lists it by. Drivers register from
// a static DeviceRegistration in a library linked with alwayslink.
void RegisterDevice(std::string name, DeviceFactory factory);

struct DeviceRegistration {
  DeviceRegistration(std::string name, DeviceFactory factory) {
    RegisterDevice(std::move(name), std::move(factory));
  }
};

// Creates the driver registered as `name`; InvalidArgument naming the known
// ones if there is none.
absl::StatusOr<std::unique_ptr<Device>> CreateDevice(
    absl::string_view name, const DeviceContext& context = {});

// Registered names, sorted.
std::vector<std::string> KnownDeviceNames();

}  // namespace joule::device

#endif  // JOULE_DEVICE_REGISTRY_H_
