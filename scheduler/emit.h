#ifndef JOULE_SCHEDULER_EMIT_H_
#define JOULE_SCHEDULER_EMIT_H_

#include <optional>
#include <string>

#include "absl/types/span.h"
#include "device/device.h"
#include "scheduler/generation.h"
#include "scheduler/sequence.h"
#include "telemetry/metrics.h"

namespace joule::scheduler {

// Where tokens are being generated, as their events and metrics name it.
struct EmitSite {
  std::string device;
  device::EnergySource source = device::EnergySource::kNone;
  // The device has an energy meter, so tokens carry energy when every step
  // since the last token had a figure.
  bool metered = false;
  telemetry::Metrics* metrics = nullptr;  // May be null.
};

// Samples the sequence's next token from `logits` (overwriting them),
// appends it to its context, and sends it to the observer with the energy
// gathered since the previous token and, if the request asked, its
// log-probabilities. Returns why the sequence ends with this token (end of
// sequence, its length, or the observer asking to stop), or nothing if it
// goes on. Runs on the device loop's thread.
std::optional<FinishReason> EmitToken(Sequence& s, absl::Span<float> logits,
                                      const EmitSite& site);

}  // namespace joule::scheduler

#endif  // JOULE_SCHEDULER_EMIT_H_
