#ifndef JOULE_MODEL_SAMPLER_H_
#define JOULE_MODEL_SAMPLER_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/types/span.h"

namespace joule::model {

struct SamplingParams {
  // 0: greedy (argmax).
  float temperature = 1.0f;
  // 0: no limit.
  int top_k = 0;
  // 1: no limit.
  float top_p = 1.0f;
  uint64_t seed = 0;
};

// Picks the next token from logits. Deterministic: the same params, seed and
// logits sequence give the same tokens on every machine.
class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Overwrites `logits` (softmax in place).
  int Sample(absl::Span<float> logits);

 private:
  float NextUniform();  // in [0, 1)

  SamplingParams params_;
  uint64_t state_;
  std::vector<std::pair<float, int>> candidates_;
  std::vector<float> block_sums_;
};

int Argmax(absl::Span<const float> x);

}  // namespace joule::model

#endif  // JOULE_MODEL_SAMPLER_H_
