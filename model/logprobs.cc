#include "model/logprobs.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "model/exp_non_positive.h"

// As in model/sampler.cc: AVX-512 and AVX2 copies chosen at load time,
// none under ThreadSanitizer (GCC instruments the clones' ifunc resolver,
// which ld.so runs before TSan is initialised). Over 32000 logits
// (BM_TopLogprobs in bench/tokenizer_sampler_bench) these loops take about
// 37-44 us; libm's scalar exp in double took about 380.
#if defined(__SANITIZE_THREAD__)
#define JOULE_CLONES
#else
#define JOULE_CLONES \
  __attribute__((target_clones("avx512f", "avx2", "default")))
#endif

namespace joule::model {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// NaN orders like -inf: it then never outranks a real logit, and it adds
// nothing to the softmax's sum.
float Key(float x) { return std::isnan(x) ? -kInf : x; }

// `a` is listed before `b`: more likely, or as likely and a lower id.
bool Before(const std::pair<int, float>& a, const std::pair<int, float>& b) {
  return a.second > b.second || (a.second == b.second && a.first < b.first);
}

// An integer that orders as the float does (NaN as -inf), so that a
// maximum is an integer max, which GCC vectorizes without fast-math. -0 sits
// just below +0: harmless, where it only decides which blocks to skip.
constexpr int32_t kNegInfKey = static_cast<int32_t>(0xFF800000u ^ 0x7FFFFFFFu);

inline int32_t OrderKey(float x) {
  int32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  const int32_t key = bits < 0 ? bits ^ 0x7FFFFFFF : bits;
  return (bits & 0x7FFFFFFF) > 0x7F800000 ? kNegInfKey : key;
}

inline float FromOrderKey(int32_t key) {
  const int32_t bits = key < 0 ? key ^ 0x7FFFFFFF : key;
  float x;
  std::memcpy(&x, &bits, sizeof(x));
  return x;
}

// Leaves the k best (id, keyed logit) in *top, in no particular order, and
// returns the largest keyed logit. The k best so far are kept as a heap,
// worst on top, in the output itself: no other memory. With k at most a few
// dozen, few logits ever enter it (about k ln(n / k)), so a block of logits
// is scanned only when its vectorized maximum beats the heap's worst.
JOULE_CLONES float SelectTop(const float* logits, int n, int k,
                             std::vector<std::pair<int, float>>* top) {
  constexpr int kBlock = 32;
  int32_t max_key = kNegInfKey;
  int32_t worst_key = INT32_MAX;  // Nothing beats it until the heap is full.
  if (k > 0) {
    top->reserve(k);
    for (int i = 0; i < k; ++i) {
      top->emplace_back(i, Key(logits[i]));
      max_key = std::max(max_key, OrderKey(logits[i]));
    }
    std::make_heap(top->begin(), top->end(), Before);
    worst_key = OrderKey(top->front().second);
  }
  for (int start = k; start < n; start += kBlock) {
    const int end = std::min(n, start + kBlock);
    int32_t block_max = kNegInfKey;
    for (int i = start; i < end; ++i) {
      const int32_t key = OrderKey(logits[i]);
      block_max = key > block_max ? key : block_max;
    }
    max_key = std::max(max_key, block_max);
    if (block_max <= worst_key) continue;
    for (int i = start; i < end; ++i) {
      const float x = Key(logits[i]);
      // Ids only grow, so an equal logit never displaces the lower id held.
      if (x > top->front().second) {
        std::pop_heap(top->begin(), top->end(), Before);
        top->back() = {i, x};
        std::push_heap(top->begin(), top->end(), Before);
      }
    }
    worst_key = OrderKey(top->front().second);
  }
  return FromOrderKey(max_key);
}

// sum(exp(logits - max)) for a finite `max`: subtracting the maximum keeps
// exp from overflowing (its own term is exactly 1). Each term is a float
// good to about 1e-7, which is all a float log-probability can show; the
// terms are added in double, in eight fixed partial sums (the clones'
// vector lanes), so the order of additions, and with it the result, never
// changes. A NaN logit's x - max is NaN, whose term is the clamp's 1e-38.
JOULE_CLONES double SumExpShifted(const float* logits, int n, float max) {
  constexpr int kLanes = 8;
  double acc[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      acc[j] += ExpNonPositive(logits[i + j] - max);
    }
  }
  for (; i < n; ++i) acc[0] += ExpNonPositive(logits[i] - max);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
         ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace

void TopLogprobs(absl::Span<const float> logits, int chosen, int top_n,
                 float* chosen_logprob,
                 std::vector<std::pair<int, float>>* top) {
  const int n = static_cast<int>(logits.size());
  top->clear();
  // Raw pointers below: Debian's Abseil checks bounds in Span's operator[],
  // which keeps GCC from vectorizing the loops.
  const float max = SelectTop(logits.data(), n, std::clamp(top_n, 0, n), top);
  const bool finite = std::isfinite(max);
  double lse = 0;
  double tied_logprob = 0;  // With an infinite maximum: each holder's share.
  if (finite) {
    lse = max + std::log(SumExpShifted(logits.data(), n, max));
  } else if (max > 0) {
    const auto tied = std::count(logits.begin(), logits.end(), kInf);
    tied_logprob = -std::log(static_cast<double>(tied));
  } else {
    // Every logit is -inf or NaN: all of them hold the maximum.
    tied_logprob = -std::log(static_cast<double>(n));
  }
  auto logprob = [&](float logit) {
    const float x = Key(logit);
    if (finite) return static_cast<float>(x - lse);
    return x == max ? static_cast<float>(tied_logprob) : -kInf;
  };
  *chosen_logprob = logprob(logits[chosen]);
  for (auto& entry : *top) entry.second = logprob(entry.second);
  // Sorted after the conversion, which is monotonic: distinct logits that
  // round to one float log-probability are then listed by id too.
  std::sort(top->begin(), top->end(), Before);
}

}  // namespace joule::model
