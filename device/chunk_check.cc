#include "device/chunk_check.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"

namespace joule::device {

absl::Status CheckChunk(const SequenceChunk& c, int cached,
                        const model::Config& config) {
  if (c.tokens.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("sequence %d: empty chunk", c.seq));
  }
  if (c.start_pos != cached) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "sequence %d: chunk starts at %d but %d positions are cached", c.seq,
        c.start_pos, cached));
  }
  if (c.start_pos + static_cast<int64_t>(c.tokens.size()) > config.seq_len) {
    return absl::OutOfRangeError(absl::StrFormat(
        "sequence %d: positions up to %d exceed the context of %d", c.seq,
        c.start_pos + c.tokens.size(), config.seq_len));
  }
  for (int t : c.tokens) {
    if (t < 0 || t >= config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "sequence %d: token %d outside the vocabulary", c.seq, t));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CheckBatch(absl::Span<const SequenceChunk> batch,
                                   absl::FunctionRef<int(SequenceId)> cached,
                                   const model::Config& config,
                                   const BatchLimits& limits) {
  if (batch.empty()) return absl::InvalidArgumentError("empty step");
  if (limits.max_batch > 0 && batch.size() > size_t(limits.max_batch)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("step of %d sequences exceeds the device's %d",
                        batch.size(), limits.max_batch));
  }
  absl::flat_hash_set<SequenceId> seen;
  int64_t tokens = 0;
  for (const SequenceChunk& c : batch) {
    if (!seen.insert(c.seq).second) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "sequence %d appears twice in one step; send one chunk", c.seq));
    }
    if (absl::Status s = CheckChunk(c, cached(c.seq), config); !s.ok())
      return s;
    tokens += static_cast<int64_t>(c.tokens.size());
  }
  if (limits.max_tokens > 0 && tokens > limits.max_tokens) {
    return absl::InvalidArgumentError(
        absl::StrFormat("step of %d tokens exceeds the device's %d-token "
                        "buffers",
                        tokens, limits.max_tokens));
  }
  return tokens;
}

}  // namespace joule::device
