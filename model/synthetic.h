#ifndef JOULE_MODEL_SYNTHETIC_H_
#define JOULE_MODEL_SYNTHETIC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/checkpoint_writer.h"
#include "model/config.h"

namespace joule::model {

// Shapes of the published llama2.c models: stories260K, stories15M,
// stories42M, stories110M.
absl::StatusOr<Config> ShapePreset(absl::string_view name);
std::vector<std::string> ShapePresetNames();

// Seeded random weights of a plausible scale (uniform, 1/sqrt(fan-in), unit
// norms). Each tensor has its own stream, so the same seed gives the same
// fp32 values whatever the file version, and tests can compare them.
TensorSource SyntheticWeights(const Config& config, uint64_t seed);

}  // namespace joule::model

#endif  // JOULE_MODEL_SYNTHETIC_H_
