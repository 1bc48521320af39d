#include "device/registry.h"

#include <map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace joule::device {
namespace {

// Filled during static initialization, read after main starts.
std::map<std::string, DeviceFactory>& Factories() {
  static auto* factories = new std::map<std::string, DeviceFactory>();
  return *factories;
}

}  // namespace

void RegisterDevice(std::string name, DeviceFactory factory) {
  Factories()[std::move(name)] = std::move(factory);
}

absl::StatusOr<std::unique_ptr<Device>> CreateDevice(
    absl::string_view name, const DeviceContext& context) {
  auto it = Factories().find(std::string(name));
  if (it == Factories().end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown device '", name,
        "'; known devices: ", absl::StrJoin(KnownDeviceNames(), ", ")));
  }
  return it->second(context);
}

std::vector<std::string> KnownDeviceNames() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : Factories()) names.push_back(name);
  return names;
}

}  // namespace joule::device
