#ifndef JOULE_TELEMETRY_POWER_MODEL_METER_H_
#define JOULE_TELEMETRY_POWER_MODEL_METER_H_

#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "telemetry/energy_meter.h"

namespace joule::telemetry {

// Modeled energy: the device draws `active_watts` while a step runs and
// `idle_watts` otherwise. A step costs active_watts x its device time (the
// idle baseline is inside the active figure, as in a measurement); idle
// time adds to the device's total but to no token.
struct PowerModel {
  double active_watts = 15.0;
  double idle_watts = 5.0;
};

class PowerModelMeter : public EnergyMeter {
 public:
  explicit PowerModelMeter(PowerModel model, std::string why = "");

  device::EnergySource source() const override {
    return device::EnergySource::kModeled;
  }
  std::string Describe() const override;
  absl::StatusOr<double> EndStep(absl::Duration device_time,
                                 std::optional<double> device_joules) override;
  double TotalJoules() override;

 private:
  const PowerModel model_;
  const std::string why_;
  const absl::Time start_ = absl::Now();
  absl::Mutex mu_;
  absl::Duration busy_ ABSL_GUARDED_BY(mu_);
};

// Energy the device reports itself (a simulator's figure, or a board's
// power rails read through its driver), passed through with its label.
class DeviceReportedMeter : public EnergyMeter {
 public:
  DeviceReportedMeter(device::EnergySource source, std::string description)
      : source_(source), description_(std::move(description)) {}

  device::EnergySource source() const override { return source_; }
  std::string Describe() const override { return description_; }
  absl::StatusOr<double> EndStep(absl::Duration device_time,
                                 std::optional<double> device_joules) override;
  double TotalJoules() override;

 private:
  const device::EnergySource source_;
  const std::string description_;
  absl::Mutex mu_;
  double total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace joule::telemetry

#endif  // JOULE_TELEMETRY_POWER_MODEL_METER_H_
