#include "model/sampler.h"

#include <algorithm>
#include <cmath>

namespace joule::model {

int Argmax(absl::Span<const float> x) {
  int best = 0;
  for (size_t i = 1; i < x.size(); ++i) {
    if (x[i] > x[best]) best = static_cast<int>(i);
  }
  return best;
}

Sampler::Sampler(const SamplingParams& params) : params_(params) {
  // SplitMix64 of the seed: xorshift must not start at 0.
  uint64_t z = params.seed + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  state_ = (z ^ (z >> 31)) | 1;
}

float Sampler::NextUniform() {
  // xorshift64*, as llama2.c's sampler.
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  uint32_t r = static_cast<uint32_t>((state_ * 0x2545F4914F6CDD1Dull) >> 32);
  return (r >> 8) / 16777216.0f;
}

int Sampler::Sample(absl::Span<float> logits) {
  if (params_.temperature <= 0.0f) return Argmax(logits);
  const int n = static_cast<int>(logits.size());
  float max_logit = logits[Argmax(logits)];
  float sum = 0.0f;
  for (float& l : logits) {
    l = std::exp((l - max_logit) / params_.temperature);
    sum += l;
  }
  for (float& l : logits) l /= sum;

  const bool use_k = params_.top_k > 0 && params_.top_k < n;
  const bool use_p = params_.top_p > 0.0f && params_.top_p < 1.0f;
  const float coin = NextUniform();
  if (!use_k && !use_p) {
    float cdf = 0.0f;
    for (int i = 0; i < n; ++i) {
      cdf += logits[i];
      if (coin < cdf) return i;
    }
    return n - 1;  // Rounding left the cdf just under 1.
  }
  candidates_.clear();
  // Top-p alone: tokens below (1 - p) / (n - 1) can never be in the nucleus,
  // so dropping them first avoids sorting the whole vocabulary (llama2.c).
  const float cutoff =
      use_p && !use_k ? (1.0f - params_.top_p) / (n - 1) : 0.0f;
  for (int i = 0; i < n; ++i) {
    if (logits[i] >= cutoff) candidates_.emplace_back(logits[i], i);
  }
  auto by_prob = [](const std::pair<float, int>& a,
                    const std::pair<float, int>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = candidates_.size();
  if (use_k && static_cast<size_t>(params_.top_k) < keep) {
    keep = params_.top_k;
    std::partial_sort(candidates_.begin(), candidates_.begin() + keep,
                      candidates_.end(), by_prob);
    candidates_.resize(keep);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_prob);
  }
  float total = 0.0f;
  for (const auto& c : candidates_) total += c.first;
  if (use_p) {
    // Smallest prefix whose probability (renormalized after top-k) exceeds p.
    float cum = 0.0f;
    size_t last = candidates_.size() - 1;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      cum += candidates_[i].first;
      if (cum > params_.top_p * total) {
        last = i;
        break;
      }
    }
    candidates_.resize(last + 1);
    total = cum;
  }
  const float r = coin * total;
  float cdf = 0.0f;
  for (const auto& c : candidates_) {
    cdf += c.first;
    if (r < cdf) return c.second;
  }
  return candidates_.back().second;
}

}  // namespace joule::model
