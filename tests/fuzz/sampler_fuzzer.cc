// The sampler on arbitrary logits (NaN, inf, subnormals) and any parameters
// the server's validation lets through: it must return a token in range.
// Input: f32 temperature, i32 top_k, f32 top_p, u64 seed, then the logits.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "model/sampler.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kHeader = 4 + 4 + 4 + 8;
  if (size < kHeader + sizeof(float)) return 0;
  joule::model::SamplingParams p;
  std::memcpy(&p.temperature, data, 4);
  std::memcpy(&p.top_k, data + 4, 4);
  std::memcpy(&p.top_p, data + 8, 4);
  std::memcpy(&p.seed, data + 12, 8);
  // What ValidateRequest admits: finite temperature >= 0, top_k >= 0,
  // top_p in (0, 1].
  if (!std::isfinite(p.temperature) || p.temperature < 0) return 0;
  if (p.top_k < 0 || !(p.top_p > 0.0f && p.top_p <= 1.0f)) return 0;
  const size_t n = (size - kHeader) / sizeof(float);
  std::vector<float> logits(n);
  std::memcpy(logits.data(), data + kHeader, n * sizeof(float));
  joule::model::Sampler sampler(p);
  for (int draw = 0; draw < 3; ++draw) {
    std::vector<float> l = logits;
    const int token = sampler.Sample(absl::MakeSpan(l));
    if (token < 0 || token >= static_cast<int>(n)) __builtin_trap();
  }
  return 0;
}
