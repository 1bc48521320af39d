#include "telemetry/power_model_meter.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace joule::telemetry {

PowerModelMeter::PowerModelMeter(PowerModel model, std::string why)
    : model_(model), why_(std::move(why)) {}

std::string PowerModelMeter::Describe() const {
  return absl::StrFormat("modeled: %.1f W while stepping, %.1f W idle%s",
                         model_.active_watts, model_.idle_watts,
                         why_.empty() ? "" : " (" + why_ + ")");
}

absl::StatusOr<double> PowerModelMeter::EndStep(absl::Duration device_time,
                                                std::optional<double>) {
  absl::MutexLock lock(&mu_);
  busy_ += device_time;
  return model_.active_watts * absl::ToDoubleSeconds(device_time);
}

double PowerModelMeter::TotalJoules() {
  absl::MutexLock lock(&mu_);
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start_);
  const double busy = std::min(elapsed, absl::ToDoubleSeconds(busy_));
  return model_.active_watts * busy + model_.idle_watts * (elapsed - busy);
}

absl::StatusOr<double> DeviceReportedMeter::EndStep(
    absl::Duration, std::optional<double> device_joules) {
  if (!device_joules.has_value()) {
    return absl::InternalError("the device reported no energy for a step");
  }
  absl::MutexLock lock(&mu_);
  total_ += *device_joules;
  return *device_joules;
}

double DeviceReportedMeter::TotalJoules() {
  absl::MutexLock lock(&mu_);
  return total_;
}

}  // namespace joule::telemetry
