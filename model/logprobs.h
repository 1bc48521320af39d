#ifndef JOULE_MODEL_LOGPROBS_H_
#define JOULE_MODEL_LOGPROBS_H_

#include <utility>
#include <vector>

#include "absl/types/span.h"

namespace joule::model {

// Log-probabilities under softmax(logits): the model's own distribution, as
// APIs report "logprobs", not the sampler's temperature-scaled or truncated
// one.
//
// Sets *chosen_logprob to log(softmax(logits)[chosen]) and fills *top with
// the min(top_n, logits.size()) most likely tokens as (id, log-probability),
// most likely first, equal logits by lower id. *top is cleared first and its
// capacity reused, so a caller that keeps the vector allocates only once.
// Deterministic: the same logits give the same bits on every run.
//
// Logits of a broken checkpoint stay well-defined: NaN counts as -inf, and
// when the largest logit is infinite the tokens holding it share the
// probability equally (softmax's limit), every other token getting -inf.
//
// Requires 0 <= chosen < logits.size(); a negative top_n counts as 0.
void TopLogprobs(absl::Span<const float> logits, int chosen, int top_n,
                 float* chosen_logprob,
                 std::vector<std::pair<int, float>>* top);

}  // namespace joule::model

#endif  // JOULE_MODEL_LOGPROBS_H_
