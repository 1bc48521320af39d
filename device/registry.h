#ifndef JOULE_DEVICE_REGISTRY_H_
#define JOULE_DEVICE_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "device/device.h"

namespace joule::device {

// Creates a driver from its name on the command line (`--devices`).
// Known: "cpu" (the CPU engine), "cpu-ref" (the reference engine).
absl::StatusOr<std::unique_ptr<Device>> CreateDevice(absl::string_view name);

std::vector<std::string> KnownDeviceNames();

}  // namespace joule::device

#endif  // JOULE_DEVICE_REGISTRY_H_
