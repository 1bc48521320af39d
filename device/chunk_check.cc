#include "device/chunk_check.h"

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

}  // namespace joule::device
