#include "device/registry.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "device/cpu/reference_engine.h"

namespace joule::device {

absl::StatusOr<std::unique_ptr<Device>> CreateDevice(absl::string_view name) {
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

std::vector<std::string> KnownDeviceNames() { return {"cpu", "cpu-ref"}; }

}  // namespace joule::device
