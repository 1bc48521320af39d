#ifndef JOULE_DEVICE_CHUNK_CHECK_H_
#define JOULE_DEVICE_CHUNK_CHECK_H_

#include "absl/status/status.h"
#include "device/device.h"
#include "model/config.h"

namespace joule::device {

// The contract every driver checks before a step touches any cache: a
// non-empty chunk that starts exactly after the `cached` positions the
// device holds for its sequence, stays within the context, and names only
// tokens of the vocabulary.
absl::Status CheckChunk(const SequenceChunk& chunk, int cached,
                        const model::Config& config);

}  // namespace joule::device

#endif  // JOULE_DEVICE_CHUNK_CHECK_H_
