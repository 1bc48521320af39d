#ifndef JOULE_DEVICE_DEVICE_H_
#define JOULE_DEVICE_DEVICE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "model/checkpoint.h"

namespace joule::device {

// Identifies one sequence's KV cache on a device; chosen by the scheduler.
using SequenceId = uint64_t;

enum class DeviceKind { kCpu, kFpga, kRiscvSim };

// Where a device's energy figures come from (mirrors joule.v1.EnergySource).
enum class EnergySource { kNone, kMeasured, kSimulated, kModeled };

struct Capabilities {
  std::string name;  // Unique within a server, e.g. "cpu".
  DeviceKind kind = DeviceKind::kCpu;
  std::string description;
  int max_batch_size = 1;
  // Most tokens (all sequences' chunks together) one step may carry; 0: no
  // limit. The scheduler keeps its per-step budget within it.
  int max_step_tokens = 0;
  int max_context = 0;             // Positions per sequence.
  int64_t kv_capacity_tokens = 0;  // Cached positions over all sequences.
  std::string precision;           // e.g. "fp32", "int8 (Q8_0)".
  EnergySource energy_source = EnergySource::kNone;
  // The device puts each step's energy in StepOutput::energy_joules itself
  // (from energy_source); otherwise the server meters it.
  bool reports_energy = false;
};

// One sequence's part of a step: `tokens` go at positions start_pos,
// start_pos+1, ...; the device must already hold exactly start_pos cached
// positions for `seq` (0 for a new sequence).
struct SequenceChunk {
  SequenceId seq = 0;
  int start_pos = 0;
  absl::Span<const int> tokens;
};

struct StepOutput {
  int vocab_size = 0;
  // Row i (vocab_size floats) holds the logits after the last token of
  // batch[i]. Reused across steps to avoid reallocating.
  std::vector<float> logits;
  // Time the device spent on the step (wall time, or simulated/modeled
  // time for devices that report it).
  absl::Duration device_time;
  // Energy of the step, for devices that know it themselves (a simulator,
  // a board's power rails); capabilities().energy_source says which.
  std::optional<double> energy_joules;

  absl::Span<float> row(int i) {
    return absl::MakeSpan(logits).subspan(static_cast<size_t>(i) * vocab_size,
                                          vocab_size);
  }
};

// What every driver implements (after ggml's backend interface: small and
// batch-shaped). The scheduler calls Step and Release from one thread per
// device; implementations need no locking for that, but Release may be
// called while no step runs from any thread holding the scheduler's lock.
class Device {
 public:
  virtual ~Device() = default;

  virtual Capabilities capabilities() const = 0;

  // Prepares the device to run `ckpt`, which outlives the device.
  virtual absl::Status LoadModel(const model::Checkpoint& ckpt) = 0;

  // Runs one step: every chunk's tokens (a prompt chunk of one or more
  // tokens, or a decode's single token; both kinds may share a step) and
  // returns each sequence's logits at its last position in out->row(i).
  // Drivers check the batch with CheckBatch (chunk_check.h) before touching
  // any cache, so a bad step changes nothing.
  virtual absl::Status Step(absl::Span<const SequenceChunk> batch,
                            StepOutput* out) = 0;

  // Frees a sequence's KV cache. Unknown ids are ignored.
  virtual void Release(SequenceId seq) = 0;

  // Cached positions currently held, over all sequences.
  virtual int64_t kv_used_tokens() const = 0;
};

}  // namespace joule::device

#endif  // JOULE_DEVICE_DEVICE_H_
