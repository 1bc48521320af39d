#ifndef JOULE_MODEL_CONVERT_H_
#define JOULE_MODEL_CONVERT_H_

#include <string>

#include "absl/status/status.h"
#include "model/checkpoint.h"
#include "model/checkpoint_writer.h"

namespace joule::model {

// The fp32 values of an open checkpoint's tensors (dequantized if Q8_0).
TensorSource CheckpointWeights(const Checkpoint& ckpt);

// Rewrites `input` as `version` (0 or 2). group_size 0 picks
// ChooseGroupSize(config).
absl::Status ConvertCheckpoint(const Checkpoint& input,
                               const std::string& output, int version,
                               int group_size);

}  // namespace joule::model

#endif  // JOULE_MODEL_CONVERT_H_
