// The scheduler's pure pieces: KV blocks, the queue, the router, the planner.
#include <memory>

#include "gtest/gtest.h"
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

TEST(RouterTest, PreferredPinnedAndPolicies) {
  std::vector<DeviceLoad> d(3);
  d[0].name = "cpu";
  d[1].name = "fpga";
  d[2].name = "riscv";
  for (auto& x : d) x.max_batch_size = 8;
  d[0].seconds_per_step = 0.010;
  d[1].seconds_per_step = 0.002;
  d[2].seconds_per_step = 0.004;
  Router latency(RoutingPolicy::kLatency);
  EXPECT_EQ(latency.Pick(d, "", false), 1);
  EXPECT_EQ(latency.Pick(d, "cpu", false), 0);
  d[1].running = 40;  // Busy: 6 waves of 2 ms > 1 wave of 4 ms.
  EXPECT_EQ(latency.Pick(d, "", false), 2);
  d[0].healthy = false;
  EXPECT_EQ(latency.Pick(d, "cpu", false), 2);  // Preferred but down.
  EXPECT_EQ(latency.Pick(d, "cpu", true), -1);  // Pinned and down.

  // A device not measured yet is tried before measured ones.
  std::vector<DeviceLoad> fresh = d;
  fresh[1].healthy = true;
  fresh[1].running = 0;
  fresh[2].seconds_per_step = -1;
  EXPECT_EQ(latency.Pick(fresh, "", false), 2);

  Router energy(RoutingPolicy::kEnergy);
  d[0].healthy = true;
  d[0].joules_per_token = 0.5;
  d[1].joules_per_token = 0.05;
  d[2].joules_per_token = 0.2;
  EXPECT_EQ(energy.Pick(d, "", false), 1);  // Busy but frugal.

  Router rr(RoutingPolicy::kRoundRobin);
  d[1].healthy = false;
  EXPECT_EQ(rr.Pick(d, "", false), 0);
  EXPECT_EQ(rr.Pick(d, "", false), 2);
  EXPECT_EQ(rr.Pick(d, "", false), 0);
  for (auto& x : d) x.healthy = false;
  EXPECT_EQ(rr.Pick(d, "", false), -1);
  EXPECT_FALSE(ParseRoutingPolicy("fastest").ok());
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
