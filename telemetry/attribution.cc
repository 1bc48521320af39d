#include "telemetry/attribution.h"

#include <cstddef>

namespace joule::telemetry {

std::vector<double> AttributeEnergy(double step_joules,
                                    const std::vector<double>& work) {
  std::vector<double> shares(work.size(), 0.0);
  if (work.empty()) return shares;
  double total = 0;
  for (double w : work) total += w > 0 ? w : 0;
  for (std::size_t i = 0; i < work.size(); ++i) {
    shares[i] = total > 0 ? step_joules * (work[i] > 0 ? work[i] : 0) / total
                          : step_joules / work.size();
  }
  return shares;
}

}  // namespace joule::telemetry
