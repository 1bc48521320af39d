#include "model/sampler.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "model/exp_non_positive.h"

// Not under ThreadSanitizer: GCC instruments the clones' ifunc resolver,
// which ld.so runs before TSan is initialised, and the process dies while
// it is being relocated.
#if defined(__SANITIZE_THREAD__)
#define JOULE_CLONES
#else
#define JOULE_CLONES \
  __attribute__((target_clones("avx512f", "avx2", "default")))
#endif

namespace joule::model {
namespace {

// y[i] = exp(-|x[i]|) (model/exp_non_positive.h), vectorized.
// target_clones: AVX-512 and AVX2 copies chosen at load time. The file is
// built with -ffp-contract=off, so every copy performs the same IEEE
// operations, only wider (temperature sampling of 32000 logits: 29 us with
// the AVX2 copy, 21 with AVX-512 and the shift-scale pass vectorized too).
JOULE_CLONES void ExpNonPositive(float* __restrict y, int n) {
  for (int i = 0; i < n; ++i) y[i] = model::ExpNonPositive(y[i]);
}

// x[i] = (x[i] - shift) * mul, in the clones' vector width.
JOULE_CLONES void ShiftScale(float* __restrict x, int n, float shift,
                             float mul) {
  for (int i = 0; i < n; ++i) x[i] = (x[i] - shift) * mul;
}

// Sums per block of 64 with 8 fixed partial sums each: the same order on
// every run (so deterministic), but not one long chain of dependent adds.
JOULE_CLONES float BlockSums(const float* logits, int n, float* block_sums) {
  constexpr int kBlock = 64;
  const int blocks = (n + kBlock - 1) / kBlock;
  float sum = 0.0f;
  for (int b = 0; b < blocks; ++b) {
    const float* x = logits + b * kBlock;
    const int len = std::min(kBlock, n - b * kBlock);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= len; i += 8) {
      for (int j = 0; j < 8; ++j) acc[j] += x[i + j];
    }
    for (; i < len; ++i) acc[0] += x[i];
    block_sums[b] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
                    ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    sum += block_sums[b];
  }
  return sum;
}

}  // namespace

namespace {

int ArgmaxScalar(const float* x, int n) {
  // The running maximum stays in a register; first index wins ties.
  int best = 0;
  float best_value = x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] > best_value) {
      best_value = x[i];
      best = i;
    }
  }
  return best;
}

// Eight lanes each keep their first maximum (strict >) and its index; the
// answer is the smallest index among lanes holding the overall maximum:
// exactly the scalar loop's first maximum.
__attribute__((target("avx2"))) int ArgmaxAvx2(const float* x, int n) {
  if (n < 16) return ArgmaxScalar(x, n);
  __m256 best = _mm256_loadu_ps(x);
  __m256i best_idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i idx = best_idx;
  const __m256i eight = _mm256_set1_epi32(8);
  int i = 8;
  for (; i + 8 <= n; i += 8) {
    idx = _mm256_add_epi32(idx, eight);
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 greater = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
    best = _mm256_blendv_ps(best, v, greater);
    best_idx = _mm256_blendv_epi8(best_idx, idx, _mm256_castps_si256(greater));
  }
  alignas(32) float values[8];
  alignas(32) int32_t indices[8];
  _mm256_store_ps(values, best);
  _mm256_store_si256(reinterpret_cast<__m256i*>(indices), best_idx);
  int answer = indices[0];
  float answer_value = values[0];
  for (int l = 1; l < 8; ++l) {
    if (values[l] > answer_value ||
        (values[l] == answer_value && indices[l] < answer)) {
      answer_value = values[l];
      answer = indices[l];
    }
  }
  for (; i < n; ++i) {
    if (x[i] > answer_value) {
      answer_value = x[i];
      answer = i;
    }
  }
  return answer;
}

// The slow path for logits whose maximum is not finite: the first +inf,
// else the first maximum of the non-NaN values, else 0 (all NaN).
int ArgmaxNonFinite(absl::Span<const float> x) {
  int best = -1;
  for (int i = 0; i < static_cast<int>(x.size()); ++i) {
    if (std::isnan(x[i])) continue;
    if (best < 0 || x[i] > x[best]) best = i;
  }
  return best < 0 ? 0 : best;
}

}  // namespace

int Argmax(absl::Span<const float> x) {
  static const bool avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  const int n = static_cast<int>(x.size());
  return avx2 ? ArgmaxAvx2(x.data(), n) : ArgmaxScalar(x.data(), n);
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
  const int n = static_cast<int>(logits.size());
  if (n <= 1) return 0;
  const int best = Argmax(logits);
  const float max_logit = logits[best];
  // A NaN or infinite maximum (a broken checkpoint) would make every weight
  // NaN: only a greedy pick is meaningful then.
  if (!std::isfinite(max_logit)) return ArgmaxNonFinite(logits);
  // A temperature so small that 1/T overflows would make the maximum's
  // weight 0 * inf = NaN; such a temperature is greedy in all but name.
  const float inv_t = 1.0f / params_.temperature;
  if (params_.temperature <= 0.0f || !std::isfinite(inv_t)) return best;
  // Unnormalized weights exp((l - max) / T): the maximum's is exactly 1,
  // so it always passes the top-p cut-off below and a candidate list is
  // never empty. The coin is scaled by the weights' sum instead of dividing
  // every weight.
  ShiftScale(logits.data(), n, max_logit, inv_t);
  ExpNonPositive(logits.data(), n);
  constexpr int kBlock = 64;
  const int blocks = (n + kBlock - 1) / kBlock;
  block_sums_.resize(blocks);
  const float sum = BlockSums(logits.data(), n, block_sums_.data());

  const bool use_k = params_.top_k > 0 && params_.top_k < n;
  const bool use_p = params_.top_p > 0.0f && params_.top_p < 1.0f;
  const float coin = NextUniform();
  if (!use_k && !use_p) {
    // Find the block where the cumulative weight passes the coin, then
    // the token within it.
    const float r = coin * sum;
    float cdf = 0.0f;
    for (int b = 0; b < blocks; ++b) {
      if (r < cdf + block_sums_[b] || b + 1 == blocks) {
        const int end = std::min(n, (b + 1) * kBlock);
        int last_weighted = b * kBlock;
        for (int i = b * kBlock; i < end; ++i) {
          cdf += logits[i];
          if (r < cdf) return i;
          if (logits[i] > 0.0f) last_weighted = i;
        }
        // Rounding left the element sum just short of the block sum.
        return last_weighted;
      }
      cdf += block_sums_[b];
    }
    return n - 1;
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
  return candidates_.empty() ? best : candidates_.back().second;
}

}  // namespace joule::model
