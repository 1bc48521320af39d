#ifndef JOULE_TELEMETRY_ATTRIBUTION_H_
#define JOULE_TELEMETRY_ATTRIBUTION_H_

#include <vector>

namespace joule::telemetry {

// Splits one step's energy across the sequences in its batch in proportion
// to their work (FLOPs: tokens computed, each costing more at later
// positions because attention reads more cache). The shares add up to
// `step_joules`; with no work recorded, they are equal.
std::vector<double> AttributeEnergy(double step_joules,
                                    const std::vector<double>& work);

}  // namespace joule::telemetry

#endif  // JOULE_TELEMETRY_ATTRIBUTION_H_
