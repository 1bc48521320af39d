#include "scheduler/emit.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "model/logprobs.h"

namespace joule::scheduler {
namespace {

// Moves the energy gathered since the last token into the token's event and
// the request's total; a step without a figure makes both unknown.
void TakePendingEnergy(Sequence& s, const EmitSite& site, TokenEvent* ev) {
  if (s.pending_known && site.metered) {
    ev->energy_joules = s.pending_joules;
    s.stats.energy_joules =
        s.stats.energy_joules.value_or(0) + s.pending_joules;
  } else {
    s.energy_known = false;
  }
  s.stats.energy_source = site.source;
  s.pending_joules = 0;
  s.pending_known = true;
}

}  // namespace

std::optional<FinishReason> EmitToken(Sequence& s, absl::Span<float> logits,
                                      const EmitSite& site) {
  TokenEvent ev;
  const int logprobs = s.request.logprobs;
  // Sample overwrites the logits, and logprobs need them raw.
  if (logprobs >= 0) s.raw_logits.assign(logits.begin(), logits.end());
  ev.token = s.sampler.Sample(logits);
  if (logprobs >= 0) {
    float chosen = 0;
    model::TopLogprobs(s.raw_logits, ev.token, logprobs, &chosen,
                       &ev.top_logprobs);
    ev.logprob = chosen;
  }
  ev.index = s.generated();
  s.context.push_back(ev.token);
  const auto& ends = s.request.end_tokens;
  ev.special = std::find(ends.begin(), ends.end(), ev.token) != ends.end();
  const bool eos = ev.special && !s.request.ignore_eos;
  const bool full = s.generated() >= s.max_generated;
  ev.last = eos || full;
  ev.time = absl::Now();
  ev.device = site.device;
  ev.energy_source = site.source;
  TakePendingEnergy(s, site, &ev);
  if (ev.index == 0) s.stats.first_token_time = ev.time;
  if (site.metrics != nullptr) {
    if (ev.index == 0) site.metrics->PromptTokens(site.device, s.prompt_len);
    site.metrics->Token(site.device, site.source, ev.energy_joules);
  }
  const bool keep_going = s.observer->OnToken(ev);
  if (eos) return FinishReason::kEndOfSequence;
  if (!keep_going) return FinishReason::kStopped;
  if (full) return FinishReason::kLength;
  return std::nullopt;
}

}  // namespace joule::scheduler
