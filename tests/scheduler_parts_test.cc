// The scheduler's pure pieces: KV blocks, the queue, the router, the planner.
#include <memory>

#include "gtest/gtest.h"
#include "scheduler/cost_tracker.h"
#include "scheduler/kv_block_manager.h"
#include "scheduler/request_queue.h"
#include "scheduler/router.h"
#include "scheduler/step_planner.h"

namespace joule::scheduler {
namespace {

std::shared_ptr<Sequence> Seq(int prompt_len, uint64_t order, absl::Time rank) {
  GenerationRequest r;
  r.prompt.assign(prompt_len, 5);
  r.max_tokens = 100;
  auto s = std::make_shared<Sequence>(r, nullptr, 100);
  s->order = order;
  s->id = order;
  s->rank_time = rank;
  return s;
}

TEST(KvBlockManagerTest, ReservesWholeBlocksAndFreesThem) {
  KvBlockManager kv(100, 16);  // 6 whole blocks.
  EXPECT_EQ(kv.total_blocks(), 6);
  EXPECT_TRUE(kv.Grow(1, 17));  // 2 blocks.
  EXPECT_EQ(kv.used_blocks(), 2);
  EXPECT_TRUE(kv.Grow(1, 32));  // Still 2.
  EXPECT_EQ(kv.used_blocks(), 2);
  EXPECT_FALSE(kv.Grow(2, 65));  // 5 blocks > 4 free: refused, no change.
  EXPECT_EQ(kv.used_blocks(), 2);
  EXPECT_TRUE(kv.CanHold(2, 64));
  EXPECT_TRUE(kv.Grow(2, 64));
  EXPECT_EQ(kv.free_blocks(), 0);
  EXPECT_DOUBLE_EQ(kv.usage(), 1.0);
  kv.Free(1);
  EXPECT_EQ(kv.free_blocks(), 2);
  kv.Free(99);  // Unknown: ignored.
}

TEST(RequestQueueTest, OrdersByRankThenArrival) {
  RequestQueue q;
  const absl::Time t = absl::Now();
  q.Push(Seq(3, 2, t));
  q.Push(Seq(4, 1, t));
  q.Push(Seq(5, 3, t - absl::Seconds(1)));  // Higher priority.
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.pending_tokens(), 12);
  EXPECT_EQ(q.PopFront()->order, 3u);
  EXPECT_EQ(q.PopFront()->order, 1u);
  auto removed = q.RemoveIf([](const Sequence& s) { return s.order == 2; });
  EXPECT_EQ(removed.size(), 1u);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.pending_tokens(), 0);
}

int Pick(Router& r, const std::vector<DeviceLoad>& d,
         const std::string& preferred, bool pinned, RequestShape shape = {8, 32},
         int exclude = -1) {
  return r.Pick(d, shape, preferred, pinned, exclude).device;
}

std::vector<DeviceLoad> ThreeDevices() {
  std::vector<DeviceLoad> d(3);
  d[0].name = "cpu";
  d[1].name = "fpga";
  d[2].name = "riscv";
  for (auto& x : d) x.max_batch_size = 8;
  d[0].seconds_per_step = 0.010;
  d[1].seconds_per_step = 0.002;
  d[2].seconds_per_step = 0.004;
  return d;
}

void SetJoules(DeviceLoad& d, double prefill, double decode) {
  d.prefill.joules_per_token = prefill;
  d.decode.joules_per_token = decode;
}

TEST(RouterTest, PreferredPinnedAndLatency) {
  std::vector<DeviceLoad> d = ThreeDevices();
  Router latency(RoutingPolicy::kLatency);
  EXPECT_EQ(Pick(latency, d, "", false), 1);
  EXPECT_EQ(Pick(latency, d, "cpu", false), 0);
  EXPECT_TRUE(latency.Pick(d, {8, 32}, "cpu", false).requested);
  EXPECT_FALSE(latency.Pick(d, {8, 32}, "", false).requested);
  EXPECT_EQ(Pick(latency, d, "", false, {8, 32}, /*exclude=*/1), 2);
  d[1].running = 40;  // Busy: 6 waves of 2 ms > 1 wave of 4 ms.
  EXPECT_EQ(Pick(latency, d, "", false), 2);
  d[0].healthy = false;
  EXPECT_EQ(Pick(latency, d, "cpu", false), 2);  // Preferred but down.
  EXPECT_EQ(Pick(latency, d, "cpu", true), -1);  // Pinned and down.

  // A device not measured yet is tried before measured ones.
  std::vector<DeviceLoad> fresh = d;
  fresh[1].healthy = true;
  fresh[1].running = 0;
  fresh[2].seconds_per_step = -1;
  EXPECT_EQ(Pick(latency, fresh, "", false), 2);
  EXPECT_FALSE(ParseRoutingPolicy("fastest").ok());
  EXPECT_EQ(PolicyName(*ParseRoutingPolicy("energy")), "energy");
}

TEST(RouterTest, EnergyPricesEachPhaseOfTheRequest) {
  std::vector<DeviceLoad> d = ThreeDevices();
  SetJoules(d[0], 0.001, 0.5);   // Cheap prompts, dear tokens.
  SetJoules(d[1], 0.02, 0.05);   // The reverse.
  SetJoules(d[2], 0.03, 0.2);
  // 8 + 32 tokens: 16.0 J, 1.76 J, 6.64 J.
  EXPECT_DOUBLE_EQ(Router::ExpectedJoules(d[0], {8, 32}), 0.008 + 16.0);
  Router energy(RoutingPolicy::kEnergy);
  Placement p = energy.Pick(d, {8, 32}, "", false);
  EXPECT_EQ(p.device, 1);
  EXPECT_DOUBLE_EQ(p.prices[1], 8 * 0.02 + 32 * 0.05);
  // 2000 prompt tokens, 1 generated: the cheap prefill wins.
  EXPECT_EQ(Pick(energy, d, "", false, {2000, 1}), 0);
  // Energy ignores speed: the slowest device is the cheapest here.
  SetJoules(d[0], 0.001, 0.001);
  EXPECT_EQ(Pick(energy, d, "", false), 0);
}

TEST(RouterTest, EnergyPrefersRoomThenPricesAndNeverTreatsUnknownAsFree) {
  std::vector<DeviceLoad> d = ThreeDevices();
  SetJoules(d[0], 0.01, 0.01);
  SetJoules(d[1], 0.02, 0.02);
  Router energy(RoutingPolicy::kEnergy);
  // riscv has no figure yet: it is not free, so the priced ones go first.
  EXPECT_EQ(Pick(energy, d, "", false), 0);
  // The cheapest is full (its next batch is taken): the next with room.
  d[0].running = 6;
  d[0].queued = 2;
  EXPECT_EQ(Pick(energy, d, "", false), 1);
  // Every priced device full: the cheapest still, it queues there.
  d[1].running = 8;
  EXPECT_EQ(Pick(energy, d, "", false), 0);
  // Nobody priced (e.g. no meters): the fastest takes it.
  for (auto& x : d) SetJoules(x, -1, -1);
  d[1].running = 0;
  EXPECT_EQ(Pick(energy, d, "", false), 1);
  // One phase known is not a price.
  SetJoules(d[2], 0.001, -1);
  EXPECT_LT(Router::ExpectedJoules(d[2], {8, 32}), 0);
}

TEST(RouterTest, RoundRobinSkipsUnhealthyDevices) {
  std::vector<DeviceLoad> d = ThreeDevices();
  Router rr(RoutingPolicy::kRoundRobin);
  d[1].healthy = false;
  EXPECT_EQ(Pick(rr, d, "", false), 0);
  EXPECT_EQ(Pick(rr, d, "", false), 2);
  EXPECT_EQ(Pick(rr, d, "", false), 0);
  for (auto& x : d) x.healthy = false;
  EXPECT_EQ(Pick(rr, d, "", false), -1);
}

TEST(CostTrackerTest, RunningCostsPerTokenByPhase) {
  CostTracker c(/*weight=*/0.5);
  EXPECT_LT(c.prefill().joules_per_token, 0);
  EXPECT_LT(c.decode().seconds_per_token, 0);
  c.Record(Phase::kPrefill, 10, 0.010, 1.0);  // 1 ms and 0.1 J a token.
  EXPECT_DOUBLE_EQ(c.prefill().seconds_per_token, 0.001);
  EXPECT_DOUBLE_EQ(c.prefill().joules_per_token, 0.1);
  c.Record(Phase::kPrefill, 10, 0.030, 3.0);  // Blended half and half.
  EXPECT_DOUBLE_EQ(c.prefill().seconds_per_token, 0.002);
  EXPECT_DOUBLE_EQ(c.prefill().joules_per_token, 0.2);
  c.Record(Phase::kDecode, 4, 0.004, std::nullopt);  // Time, no energy.
  EXPECT_DOUBLE_EQ(c.decode().seconds_per_token, 0.001);
  EXPECT_LT(c.decode().joules_per_token, 0);
  c.Record(Phase::kDecode, 0, 1.0, 1.0);  // No tokens: nothing to learn.
  EXPECT_DOUBLE_EQ(c.decode().seconds_per_token, 0.001);
}

TEST(StepPlannerTest, DecodesFirstThenBudgetedPrefillChunks) {
  KvBlockManager kv(1000, 16);
  StepLimits limits;
  limits.max_batch_size = 8;
  limits.max_step_tokens = 40;
  std::vector<std::shared_ptr<Sequence>> running;
  const absl::Time t = absl::Now();
  for (int i = 0; i < 3; ++i) {  // Decoding: one uncached token each.
    auto s = Seq(10, i, t);
    s->cached = 9;
    ASSERT_TRUE(TryAdmit(*s, kv, i, limits));
    running.push_back(s);
  }
  auto long_prompt = Seq(100, 10, t);
  ASSERT_TRUE(TryAdmit(*long_prompt, kv, 3, limits));
  running.push_back(long_prompt);
  StepPlan plan = PlanStep(running, kv, limits);
  EXPECT_EQ(plan.decode.size(), 3u);
  ASSERT_EQ(plan.prefill.size(), 1u);
  EXPECT_EQ(plan.prefill[0].tokens, 37);  // 40 - 3 decodes.
  EXPECT_TRUE(plan.preempted.empty());
}

TEST(StepPlannerTest, PreemptsTheNewestWhenBlocksRunOut) {
  KvBlockManager kv(64, 16);  // 4 blocks.
  StepLimits limits;
  std::vector<std::shared_ptr<Sequence>> running;
  const absl::Time t = absl::Now();
  for (int i = 0; i < 2; ++i) {  // 31 tokens + 1: exactly 2 blocks each.
    auto s = Seq(31, i, t);
    ASSERT_TRUE(TryAdmit(*s, kv, i, limits));
    s->cached = 31;
    s->context.push_back(7);  // Generated one; the next step feeds it.
    running.push_back(s);
  }
  // Both now need a third block for position 32; only the oldest gets it.
  running[0]->cached = 32;
  running[0]->context.push_back(8);
  running[1]->cached = 32;
  running[1]->context.push_back(8);
  StepPlan plan = PlanStep(running, kv, limits);
  ASSERT_EQ(plan.preempted.size(), 1u);
  EXPECT_EQ(plan.preempted[0]->order, 1u);
  ASSERT_EQ(plan.decode.size(), 1u);
  EXPECT_EQ(plan.decode[0]->order, 0u);
  EXPECT_EQ(running.size(), 1u);
}

TEST(StepPlannerTest, AdmissionNeedsBlocksAndABatchSlot) {
  KvBlockManager kv(64, 16);
  StepLimits limits;
  limits.max_batch_size = 1;
  auto a = Seq(40, 1, absl::Now());
  EXPECT_FALSE(TryAdmit(*a, kv, 1, limits));  // Batch full.
  EXPECT_TRUE(TryAdmit(*a, kv, 0, limits));   // 41 positions: 3 blocks.
  auto b = Seq(20, 2, absl::Now());
  EXPECT_FALSE(TryAdmit(*b, kv, 0, limits));  // 2 blocks needed, 1 free.
}

}  // namespace
}  // namespace joule::scheduler
