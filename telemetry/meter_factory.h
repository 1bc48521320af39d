#ifndef JOULE_TELEMETRY_METER_FACTORY_H_
#define JOULE_TELEMETRY_METER_FACTORY_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "device/device.h"
#include "telemetry/energy_meter.h"
#include "telemetry/power_model_meter.h"

namespace joule::telemetry {

struct EnergyConfig {
  // Where the powercap tree is (tests point it at a fake one).
  std::string rapl_root = "/sys/class/powercap";
  // For CPU devices: "auto" (RAPL if readable, else the power model),
  // "rapl" (RAPL or fail) or "model".
  std::string cpu_energy = "auto";
  // Power models by device name; devices not listed use the default.
  std::map<std::string, PowerModel> models;
  PowerModel default_model;
};

// Parses "--energy_model" values: "cpu=15:5,fpga=40:25" (device=active W:idle
// W).
absl::StatusOr<std::map<std::string, PowerModel>> ParsePowerModels(
    const std::string& spec);

// The meter for a device: the device's own figures when it reports energy
// (simulated or measured on the board), RAPL or the power model for CPUs,
// the power model otherwise.
absl::StatusOr<std::unique_ptr<EnergyMeter>> MakeMeter(
    const device::Capabilities& caps, const EnergyConfig& config);

}  // namespace joule::telemetry

#endif  // JOULE_TELEMETRY_METER_FACTORY_H_
