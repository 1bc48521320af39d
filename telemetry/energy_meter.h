#ifndef JOULE_TELEMETRY_ENERGY_METER_H_
#define JOULE_TELEMETRY_ENERGY_METER_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "device/device.h"

namespace joule::telemetry {

// Energy of one device's steps, every figure labeled with where it comes
// from: measured (hardware counters), simulated (the device simulator's own
// figure) or modeled (a documented power model). One meter per device; its
// step calls come from that device's step loop only.
class EnergyMeter {
 public:
  virtual ~EnergyMeter() = default;

  virtual device::EnergySource source() const = 0;
  // What the figures are, for ListDevices and logs.
  virtual std::string Describe() const = 0;

  // Brackets one device call.
  virtual void BeginStep() {}
  // Joules the step used. `device_time` is the step's time as the device
  // reports it; `device_joules` the device's own figure, if it has one.
  virtual absl::StatusOr<double> EndStep(
      absl::Duration device_time, std::optional<double> device_joules) = 0;

  // Energy used since the meter started, idle time included where the
  // source knows it; for the power gauge.
  virtual double TotalJoules() = 0;
};

}  // namespace joule::telemetry

#endif  // JOULE_TELEMETRY_ENERGY_METER_H_
