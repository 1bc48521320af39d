#include "model/sampler.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace joule::model {
namespace {

std::vector<float> Logits() {
  return {1.0f, 3.0f, 2.0f, 0.5f, -1.0f, 2.5f, 0.0f, 1.5f};
}

std::vector<int> Draw(const SamplingParams& p, int n) {
  Sampler s(p);
  std::vector<int> out;
  for (int i = 0; i < n; ++i) {
    std::vector<float> l = Logits();
    out.push_back(s.Sample(absl::MakeSpan(l)));
  }
  return out;
}

TEST(SamplerTest, ArgmaxIsTheFirstMaximumAtEveryLength) {
  std::mt19937 rng(2);
  for (int n : {1, 2, 7, 8, 15, 16, 17, 31, 100, 32000}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> x(n);
      // Few distinct values, so ties are common.
      for (float& v : x) v = static_cast<float>(rng() % 5);
      int want = 0;
      for (int i = 1; i < n; ++i) {
        if (x[i] > x[want]) want = i;
      }
      ASSERT_EQ(Argmax(x), want) << n;
    }
  }
}

TEST(SamplerTest, ZeroTemperatureIsArgmax) {
  SamplingParams p;
  p.temperature = 0;
  for (int t : Draw(p, 20)) EXPECT_EQ(t, 1);
}

TEST(SamplerTest, SameSeedSameTokensDifferentSeedDifferent) {
  SamplingParams p;
  p.seed = 1234;
  EXPECT_EQ(Draw(p, 200), Draw(p, 200));
  SamplingParams q = p;
  q.seed = 1235;
  EXPECT_NE(Draw(p, 200), Draw(q, 200));
}

TEST(SamplerTest, FrequenciesFollowSoftmax) {
  SamplingParams p;
  p.seed = 99;
  const int n = 40000;
  std::vector<int> counts(8);
  for (int t : Draw(p, n)) counts[t]++;
  std::vector<float> l = Logits();
  double z = 0;
  for (float v : l) z += std::exp(v);
  for (int i = 0; i < 8; ++i) {
    const double expected = std::exp(l[i]) / z;
    EXPECT_NEAR(counts[i] / double{n}, expected, 0.01) << i;
  }
}

TEST(SamplerTest, TopKOneIsGreedyAndTopKLimitsChoices) {
  SamplingParams p;
  p.top_k = 1;
  p.seed = 5;
  for (int t : Draw(p, 50)) EXPECT_EQ(t, 1);
  p.top_k = 2;  // Tokens 1 (3.0) and 5 (2.5).
  for (int t : Draw(p, 500)) EXPECT_TRUE(t == 1 || t == 5) << t;
}

TEST(SamplerTest, TopPKeepsTheNucleus) {
  SamplingParams p;
  p.top_p = 0.01f;
  p.seed = 5;
  for (int t : Draw(p, 50)) EXPECT_EQ(t, 1);
  // Probabilities: 3.0 -> ~0.35, 2.5 -> ~0.21, 2.0 -> ~0.13: p=0.5 keeps two.
  p.top_p = 0.5f;
  std::vector<int> seen(8);
  for (int t : Draw(p, 2000)) seen[t]++;
  EXPECT_GT(seen[1], 0);
  EXPECT_GT(seen[5], 0);
  for (int i : {0, 2, 3, 4, 6, 7}) EXPECT_EQ(seen[i], 0) << i;
}

TEST(SamplerTest, SoftmaxWeightsMatchLibmExp) {
  // Temperature 1 over logits spanning the useful range: the sampled
  // distribution's weights must track expf closely, so compare the
  // frequencies of a two-token vocabulary at several gaps.
  for (float gap : {0.1f, 1.0f, 3.0f, 7.0f}) {
    SamplingParams p;
    p.seed = 11;
    Sampler s(p);
    int first = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
      std::vector<float> l = {0.0f, -gap};
      first += s.Sample(absl::MakeSpan(l)) == 0;
    }
    const double expected = 1.0 / (1.0 + std::exp(-gap));
    EXPECT_NEAR(first / double{n}, expected, 0.01) << gap;
  }
}

TEST(SamplerTest, ExtremeLogitsAndTinyTemperaturesStayFinite) {
  SamplingParams p;
  p.temperature = 1e-30f;  // Scaled logits become -inf.
  p.seed = 1;
  Sampler s(p);
  for (int i = 0; i < 20; ++i) {
    std::vector<float> l = {1.0f, 5.0f, -std::numeric_limits<float>::infinity(),
                            4.9f};
    EXPECT_EQ(s.Sample(absl::MakeSpan(l)), 1);
  }
}

// Regression: 1/temperature overflowed to inf, every weight became the same
// clamped 1e-38 (0 * inf = NaN for the maximum), nothing passed top-p's
// cut-off and Sample read back() of an empty candidate list (SIGSEGV).
TEST(SamplerTest, SubnormalTemperatureWithTopPIsGreedy) {
  for (float t : {1e-45f, 1e-40f, 3e-39f}) {
    for (float top_p : {0.1f, 0.9f, 0.999f}) {
      SamplingParams p;
      p.temperature = t;
      p.top_p = top_p;
      p.seed = 7;
      for (int token : Draw(p, 20)) EXPECT_EQ(token, 1) << t << " " << top_p;
    }
  }
}

TEST(SamplerTest, NonFiniteLogitsGiveATokenInRange) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  struct Case {
    std::vector<float> logits;
    int want;  // -1: any index in range.
  };
  const std::vector<Case> cases = {
      {{nan, nan, nan, nan}, 0},     // A checkpoint with NaN weights.
      {{nan, 2.0f, nan, 1.0f}, 1},   // The largest non-NaN value.
      {{1.0f, inf, 3.0f, inf}, 1},   // The first +inf.
      {{-inf, -inf, -inf}, -1},      // All equally impossible.
      {{1.0f, nan, 0.5f, 2.0f}, -1}, // A stray NaN is (almost) never drawn.
  };
  for (const Case& c : cases) {
    for (float top_p : {1.0f, 0.9f}) {
      for (int top_k : {0, 2}) {
        SamplingParams p;
        p.top_p = top_p;
        p.top_k = top_k;
        p.seed = 3;
        Sampler s(p);
        for (int i = 0; i < 50; ++i) {
          std::vector<float> l = c.logits;
          const int token = s.Sample(absl::MakeSpan(l));
          ASSERT_GE(token, 0);
          ASSERT_LT(token, static_cast<int>(l.size()));
          if (c.want >= 0) {
            EXPECT_EQ(token, c.want);
          } else {
            EXPECT_FALSE(std::isnan(c.logits[token]));
          }
        }
      }
    }
  }
}

TEST(SamplerTest, OneTokenVocabularyWithTopP) {
  SamplingParams p;
  p.top_p = 0.5f;  // The cut-off (1 - p) / (n - 1) divides by zero here.
  Sampler s(p);
  std::vector<float> l = {0.3f};
  EXPECT_EQ(s.Sample(absl::MakeSpan(l)), 0);
}

TEST(SamplerTest, TemperatureSharpens) {
  SamplingParams cold;
  cold.temperature = 0.1f;
  cold.seed = 3;
  int top = 0;
  for (int t : Draw(cold, 1000)) top += t == 1;
  EXPECT_GT(top, 980);
}

}  // namespace
}  // namespace joule::model
