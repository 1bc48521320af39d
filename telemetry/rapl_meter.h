#ifndef JOULE_TELEMETRY_RAPL_METER_H_
#define JOULE_TELEMETRY_RAPL_METER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "telemetry/energy_meter.h"

namespace joule::telemetry {

// Measured CPU energy from Intel RAPL through the Linux powercap interface:
// the package zones <root>/intel-rapl:N/energy_uj (sub-zones such as
// intel-rapl:0:0 are inside their package and are not added again). The
// counters wrap at max_energy_range_uj. A step's energy is the packages'
// whole energy during it, so anything else the CPU runs meanwhile counts.
class RaplMeter : public EnergyMeter {
 public:
  // NotFound if `root` has no readable package zone.
  static absl::StatusOr<std::unique_ptr<RaplMeter>> Open(
      const std::string& root);

  device::EnergySource source() const override {
    return device::EnergySource::kMeasured;
  }
  std::string Describe() const override;
  void BeginStep() override;
  absl::StatusOr<double> EndStep(absl::Duration device_time,
                                 std::optional<double> device_joules) override;
  double TotalJoules() override;

 private:
  struct Zone {
    std::string path;  // .../energy_uj
    std::string name;
    uint64_t max_range_uj = 0;
  };
  explicit RaplMeter(std::vector<Zone> zones);
  // Reads every zone; false if one cannot be read.
  bool Read(std::vector<uint64_t>* values) const;
  // Microjoules from `before` to `after`, across one wrap at most.
  uint64_t Delta(const std::vector<uint64_t>& before,
                 const std::vector<uint64_t>& after) const;

  std::vector<Zone> zones_;
  std::vector<uint64_t> step_start_;
  absl::Mutex mu_;  // TotalJoules runs on scrape threads.
  std::vector<uint64_t> last_ ABSL_GUARDED_BY(mu_);
  double total_joules_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace joule::telemetry

#endif  // JOULE_TELEMETRY_RAPL_METER_H_
