#include "model/logprobs.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace joule::model {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatEq;
using ::testing::Pair;

constexpr float kInf = std::numeric_limits<float>::infinity();

// The textbook log-softmax, in double.
std::vector<double> ReferenceLogSoftmax(const std::vector<float>& logits) {
  double max = -std::numeric_limits<double>::infinity();
  for (float x : logits) max = std::max(max, static_cast<double>(x));
  double sum = 0;
  for (float x : logits) sum += std::exp(x - max);
  std::vector<double> out;
  for (float x : logits) out.push_back(x - max - std::log(sum));
  return out;
}

// Ids by logit, highest first, equal logits by lower id.
std::vector<int> ReferenceOrder(const std::vector<float>& logits) {
  std::vector<int> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = i;
  std::stable_sort(ids.begin(), ids.end(),
                   [&](int a, int b) { return logits[a] > logits[b]; });
  return ids;
}

std::vector<float> Normal(int n, float stddev, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0, stddev);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  return x;
}

TEST(LogprobsTest, MatchesADoubleLogSoftmax) {
  for (int n : {1, 2, 7, 100, 512, 32000}) {
    for (float stddev : {0.1f, 3.0f, 30.0f}) {
      const std::vector<float> logits = Normal(n, stddev, n);
      const std::vector<double> want = ReferenceLogSoftmax(logits);
      const std::vector<int> order = ReferenceOrder(logits);
      const int top_n = std::min(n, 20);
      std::vector<std::pair<int, float>> top;
      for (int chosen : {0, n / 2, n - 1}) {
        float got = 0;
        TopLogprobs(logits, chosen, top_n, &got, &top);
        EXPECT_NEAR(got, want[chosen], 1e-5) << n << " " << stddev;
      }
      ASSERT_EQ(top.size(), static_cast<size_t>(top_n));
      for (int i = 0; i < top_n; ++i) {
        EXPECT_EQ(top[i].first, order[i]) << n << " " << stddev << " " << i;
        EXPECT_NEAR(top[i].second, want[order[i]], 1e-5);
      }
    }
  }
}

TEST(LogprobsTest, LargeLogitsDoNotOverflow) {
  // Softmax ignores a common offset; exp(1000) alone would be inf.
  std::vector<float> logits = {1000.0f, 1001.0f, 999.0f};
  const std::vector<double> want = ReferenceLogSoftmax({0.0f, 1.0f, -1.0f});
  std::vector<std::pair<int, float>> top;
  for (int chosen = 0; chosen < 3; ++chosen) {
    float got = 0;
    TopLogprobs(logits, chosen, 0, &got, &top);
    EXPECT_NEAR(got, want[chosen], 1e-5);
  }
}

TEST(LogprobsTest, TopIsMostLikelyFirstAndTiesGoToTheLowerId) {
  const std::vector<float> logits = {1, 3, 3, 2, 3, 0};
  std::vector<std::pair<int, float>> top;
  float chosen = 0;
  TopLogprobs(logits, 3, 4, &chosen, &top);
  ASSERT_EQ(top.size(), 4u);
  EXPECT_EQ(top[0].first, 1);
  EXPECT_EQ(top[1].first, 2);
  EXPECT_EQ(top[2].first, 4);
  EXPECT_EQ(top[3].first, 3);
  EXPECT_EQ(top[0].second, top[1].second);
  EXPECT_EQ(top[1].second, top[2].second);
  EXPECT_EQ(chosen, top[3].second);
  // A cut through a tie keeps the lower ids.
  TopLogprobs(logits, 3, 2, &chosen, &top);
  EXPECT_THAT(top, ElementsAre(Pair(1, ::testing::_), Pair(2, ::testing::_)));
}

TEST(LogprobsTest, TopNBeyondTheVocabularyListsEveryToken) {
  const std::vector<float> logits = {0.5f, -1.0f, 2.0f, 0.5f, 1.0f};
  std::vector<std::pair<int, float>> top;
  float chosen = 0;
  TopLogprobs(logits, 0, 100, &chosen, &top);
  ASSERT_EQ(top.size(), 5u);
  std::vector<int> ids;
  double total = 0;
  for (const auto& [id, lp] : top) {
    ids.push_back(id);
    total += std::exp(lp);
  }
  EXPECT_THAT(ids, ElementsAre(2, 4, 0, 3, 1));
  EXPECT_NEAR(total, 1.0, 1e-6);
}

TEST(LogprobsTest, TopNZeroGivesOnlyTheChosenToken) {
  const std::vector<float> logits = {0.5f, -1.0f, 2.0f};
  // Whatever the vector held before goes.
  std::vector<std::pair<int, float>> top = {{7, 1.0f}};
  float chosen = 0;
  TopLogprobs(logits, 1, 0, &chosen, &top);
  EXPECT_TRUE(top.empty());
  EXPECT_NEAR(chosen, ReferenceLogSoftmax(logits)[1], 1e-6);
}

TEST(LogprobsTest, NegativeInfinityHasNoProbabilityAndRanksLast) {
  const std::vector<float> logits = {-kInf, 0.0f, -kInf, 1.0f};
  const std::vector<double> finite = ReferenceLogSoftmax({0.0f, 1.0f});
  std::vector<std::pair<int, float>> top;
  float chosen = 0;
  TopLogprobs(logits, 2, 4, &chosen, &top);
  EXPECT_EQ(chosen, -kInf);
  ASSERT_EQ(top.size(), 4u);
  EXPECT_EQ(top[0].first, 3);
  EXPECT_NEAR(top[0].second, finite[1], 1e-6);
  EXPECT_EQ(top[1].first, 1);
  EXPECT_NEAR(top[1].second, finite[0], 1e-6);
  EXPECT_EQ(top[2], std::make_pair(0, -kInf));
  EXPECT_EQ(top[3], std::make_pair(2, -kInf));
  TopLogprobs(logits, 3, 0, &chosen, &top);
  EXPECT_NEAR(chosen, finite[1], 1e-6);
}

TEST(LogprobsTest, BrokenLogitsStayDefined) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<std::pair<int, float>> top;
  float chosen = 0;
  // NaN counts as -inf.
  TopLogprobs(std::vector<float>{nan, 0.0f, 0.0f}, 0, 3, &chosen, &top);
  EXPECT_EQ(chosen, -kInf);
  EXPECT_THAT(top,
              ElementsAre(Pair(1, FloatEq(std::log(0.5f))),
                          Pair(2, FloatEq(std::log(0.5f))), Pair(0, -kInf)));
  // +inf logits share all the probability.
  TopLogprobs(std::vector<float>{kInf, 5.0f, kInf}, 2, 2, &chosen, &top);
  EXPECT_FLOAT_EQ(chosen, std::log(0.5f));
  EXPECT_THAT(top, ElementsAre(Pair(0, FloatEq(std::log(0.5f))),
                               Pair(2, FloatEq(std::log(0.5f)))));
  TopLogprobs(std::vector<float>{kInf, 5.0f, kInf}, 1, 0, &chosen, &top);
  EXPECT_EQ(chosen, -kInf);
  // Nothing finite at all: every token at the maximum, so all equal.
  TopLogprobs(std::vector<float>{-kInf, nan, -kInf, -kInf}, 1, 1, &chosen,
              &top);
  EXPECT_FLOAT_EQ(chosen, std::log(0.25f));
  EXPECT_THAT(top, ElementsAre(Pair(0, FloatEq(std::log(0.25f)))));
}

TEST(LogprobsTest, SameLogitsSameBits) {
  const std::vector<float> logits = Normal(32000, 3.0f, 5);
  float first = 0, again = 0;
  std::vector<std::pair<int, float>> top_first, top_again;
  TopLogprobs(logits, 17, 20, &first, &top_first);
  for (int i = 0; i < 3; ++i) {
    TopLogprobs(logits, 17, 20, &again, &top_again);
    EXPECT_EQ(std::memcmp(&first, &again, sizeof(float)), 0);
    EXPECT_EQ(top_first, top_again);
  }
}

}  // namespace
}  // namespace joule::model
