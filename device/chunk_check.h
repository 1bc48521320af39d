#ifndef JOULE_DEVICE_CHUNK_CHECK_H_
#define JOULE_DEVICE_CHUNK_CHECK_H_

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "device/device.h"
#include "model/config.h"

namespace joule::device {

// The contract every driver checks before a step touches any cache: a
// non-empty chunk that starts exactly after the `cached` positions the
// device holds for its sequence, stays within the context, and names only
// tokens of the vocabulary.
absl::Status CheckChunk(const SequenceChunk& chunk, int cached,
                        const model::Config& config);

// What a driver knows of a step before it runs it.
struct BatchLimits {
  int max_batch = 0;           // Chunks (sequences) per step; 0: no limit.
  int64_t max_tokens = 0;      // Tokens over all chunks; 0: no limit.
};

// The whole step's contract, checked by every driver before it touches any
// cache, so a bad step changes nothing: a non-empty batch within `limits`,
// each sequence at most once (a step writes each cache in one place), and
// every chunk valid (CheckChunk) against the `cached(seq)` positions the
// device holds. Returns the step's token count.
absl::StatusOr<int64_t> CheckBatch(
    absl::Span<const SequenceChunk> batch,
    absl::FunctionRef<int(SequenceId)> cached, const model::Config& config,
    const BatchLimits& limits);

}  // namespace joule::device

#endif  // JOULE_DEVICE_CHUNK_CHECK_H_
