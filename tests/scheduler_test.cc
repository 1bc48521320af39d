// Continuous batching with the reference engine behind fake devices that
// slow down, fail or hang on command.
#include "scheduler/scheduler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "device/cpu/reference_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"
#include "telemetry/metrics.h"
#include "telemetry/power_model_meter.h"
#include "tests/fake_device.h"
#include "tests/test_paths.h"

namespace joule::scheduler {
namespace {

class Collect : public GenerationObserver {
 public:
  bool OnToken(const TokenEvent& e) override {
    absl::MutexLock l(&mu);
    tokens.push_back(e.token);
    devices.push_back(e.device);
    if (e.energy_joules.has_value()) energies.push_back(*e.energy_joules);
    logprobs.push_back(e.logprob);
    top_logprobs.push_back(e.top_logprobs);
    return true;
  }
  void OnFinish(const FinishEvent& e) override {
    absl::MutexLock l(&mu);
    finish = e;
    done.Notify();
  }
  bool Wait(absl::Duration d = absl::Seconds(30)) {
    return done.WaitForNotificationWithTimeout(d);
  }
  absl::Mutex mu;
  std::vector<int> tokens;
  std::vector<std::string> devices;
  std::vector<double> energies;
  std::vector<std::optional<float>> logprobs;
  std::vector<std::vector<std::pair<int, float>>> top_logprobs;
  FinishEvent finish;
  absl::Notification done;
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ckpt =
        model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
    ASSERT_TRUE(ckpt.ok());
    ckpt_ = *std::move(ckpt);
    auto tok = model::Tokenizer::Load(testing::SharedModel("tok512.bin"), 512);
    ASSERT_TRUE(tok.ok());
    tok_ = *std::move(tok);
  }

  // A fake device over a fresh reference engine.
  std::unique_ptr<testing::FakeDevice> MakeDevice(const std::string& name,
                                                  int64_t kv_tokens = 0) {
    device::ReferenceEngine::Options o;
    o.name = name;
    o.kv_capacity_tokens = kv_tokens;
    auto ref = std::make_unique<device::ReferenceEngine>(o);
    EXPECT_TRUE(ref->LoadModel(*ckpt_).ok());
    return std::make_unique<testing::FakeDevice>(std::move(ref), name);
  }

  // Builds a scheduler over `n` fake devices named dev0.. and keeps
  // pointers to them in fakes_.
  std::unique_ptr<Scheduler> Make(SchedulerOptions options, int n = 1,
                                  int64_t kv_tokens = 0) {
    std::vector<std::unique_ptr<device::Device>> devices;
    fakes_.clear();
    for (int i = 0; i < n; ++i) {
      auto d = MakeDevice("dev" + std::to_string(i), kv_tokens);
      fakes_.push_back(d.get());
      devices.push_back(std::move(d));
    }
    return std::make_unique<Scheduler>(std::move(devices), options);
  }

  GenerationRequest Request(const std::string& prompt, int max_tokens,
                            float temperature = 0.0f, uint64_t seed = 0) {
    GenerationRequest r;
    r.prompt = tok_->Encode(prompt, true);
    r.max_tokens = max_tokens;
    r.sampling.temperature = temperature;
    r.sampling.seed = seed;
    r.end_tokens = {1, 2};
    return r;
  }

  std::shared_ptr<Collect> Run(Scheduler& s, GenerationRequest r) {
    auto obs = std::make_shared<Collect>();
    auto h = s.Submit(std::move(r), obs);
    EXPECT_TRUE(h.ok()) << h.status();
    EXPECT_TRUE(obs->Wait());
    return obs;
  }

  // Greedy tokens of `prompt` computed alone, the oracle for batched runs.
  std::vector<int> Alone(const std::string& prompt, int max_tokens) {
    auto s = Make({});
    return Run(*s, Request(prompt, max_tokens))->tokens;
  }

  std::unique_ptr<model::Checkpoint> ckpt_;
  std::unique_ptr<model::Tokenizer> tok_;
  std::vector<testing::FakeDevice*> fakes_;
};

const std::vector<std::string> kPrompts = {
    "Once upon a time",
    "Lily and Tom went to the park",
    "The cat",
    "One day, a little boy named Max found a big red ball in the garden",
    "",
    "She was very happy",
    "Tim had a toy car",
    "The sun was hot and"};

TEST_F(SchedulerTest, GreedyOutputIsTheSameAloneOrInAnyBatch) {
  std::vector<std::vector<int>> alone;
  for (const auto& p : kPrompts) alone.push_back(Alone(p, 40));
  SchedulerOptions o;
  o.max_step_tokens = 24;  // Prompts prefill in chunks among decodes.
  auto s = Make(o);
  fakes_[0]->set_step_delay(absl::Milliseconds(1));
  std::vector<std::shared_ptr<Collect>> obs;
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    // Sampled neighbours too: composition must not matter.
    obs.push_back(std::make_shared<Collect>());
    ASSERT_TRUE(s->Submit(Request(kPrompts[i], 40), obs.back()).ok());
    auto noise = std::make_shared<Collect>();
    ASSERT_TRUE(s->Submit(Request(kPrompts[i], 20 + i, 1.0f, i), noise).ok());
  }
  for (size_t i = 0; i < obs.size(); ++i) {
    ASSERT_TRUE(obs[i]->Wait());
    EXPECT_EQ(obs[i]->tokens, alone[i]) << "prompt " << i;
  }
  EXPECT_GT(fakes_[0]->max_decode_batch(), 4) << "requests were not batched";
}

TEST_F(SchedulerTest, LongPromptsPrefillInChunksBetweenDecodes) {
  SchedulerOptions o;
  o.max_step_tokens = 16;
  auto s = Make(o);
  auto streaming = std::make_shared<Collect>();
  GenerationRequest r = Request("Once", 100);
  r.ignore_eos = true;
  const int probe_steps = fakes_[0]->steps();
  ASSERT_TRUE(s->Submit(r, streaming).ok());
  while (fakes_[0]->steps() < probe_steps + 5)
    absl::SleepFor(absl::Milliseconds(1));
  std::string long_prompt;
  for (int i = 0; i < 12; ++i)
    long_prompt += "Lily saw a big dog in the park. ";
  const int n = tok_->Encode(long_prompt, true).size();
  ASSERT_GT(n, 100);
  auto late = Run(*s, Request(long_prompt, 5));
  ASSERT_TRUE(streaming->Wait());
  // No step computed more than the budget, the long prompt took several
  // chunks, and the running stream decoded in the same steps (one device
  // call each) rather than waiting for them.
  int chunks = 0;
  for (int t : fakes_[0]->prefill_tokens_per_call()) {
    EXPECT_LE(t, 16);
    chunks += t > 1;
  }
  EXPECT_GE(chunks, n / 16);
  const std::string calls = fakes_[0]->calls();
  EXPECT_THAT(calls, ::testing::HasSubstr("MMM"));
  EXPECT_EQ(late->tokens, Alone(long_prompt, 5));
}

TEST_F(SchedulerTest, StepsStayWithinTheDevicesTokenLimit) {
  std::vector<std::unique_ptr<device::Device>> devices;
  auto dev = MakeDevice("small");
  dev->set_max_step_tokens(8);  // Set before the scheduler reads it.
  testing::FakeDevice* fake = dev.get();
  devices.push_back(std::move(dev));
  SchedulerOptions o;  // A 512-token budget the device cannot take.
  Scheduler s(std::move(devices), o);
  std::string prompt;
  for (int i = 0; i < 6; ++i) prompt += "Lily saw a big dog in the park. ";
  auto obs = Run(s, Request(prompt, 5));
  EXPECT_TRUE(obs->finish.status.ok()) << obs->finish.status;
  EXPECT_EQ(obs->tokens, Alone(prompt, 5));
  for (int t : fake->prefill_tokens_per_call()) EXPECT_LE(t, 8);
}

TEST_F(SchedulerTest, KvPressurePreemptsTheNewestAndOutputIsUnchanged) {
  std::vector<std::vector<int>> alone;
  for (int i = 0; i < 4; ++i) alone.push_back(Alone(kPrompts[i], 60));
  SchedulerOptions o;
  o.kv_block_size = 16;
  // 160 positions: every request fits alone, four at once do not.
  auto s = Make(o, 1, /*kv_tokens=*/160);
  std::vector<std::shared_ptr<Collect>> obs;
  for (int i = 0; i < 4; ++i) {
    obs.push_back(std::make_shared<Collect>());
    ASSERT_TRUE(s->Submit(Request(kPrompts[i], 60), obs.back()).ok());
  }
  int preemptions = 0;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(obs[i]->Wait());
    EXPECT_TRUE(obs[i]->finish.status.ok()) << obs[i]->finish.status;
    EXPECT_EQ(obs[i]->tokens, alone[i]) << i;
    preemptions += obs[i]->finish.preemptions;
  }
  EXPECT_GT(preemptions, 0);
  EXPECT_EQ(obs[0]->finish.preemptions, 0) << "the oldest must not be evicted";
  EXPECT_EQ(fakes_[0]->kv_used_tokens(), 0);
}

TEST_F(SchedulerTest, CancelAndDeadlineMidBatchLeaveTheOthersIntact) {
  const std::vector<int> expected = Alone("The cat", 50);
  auto s = Make({});
  fakes_[0]->set_step_delay(absl::Milliseconds(3));
  auto a = std::make_shared<Collect>(), b = std::make_shared<Collect>(),
       c = std::make_shared<Collect>();
  GenerationRequest long_req = Request("Once", 400);
  long_req.ignore_eos = true;
  auto ha = s->Submit(long_req, a);
  GenerationRequest timed = long_req;
  timed.deadline = absl::Now() + absl::Milliseconds(100);
  ASSERT_TRUE(s->Submit(timed, b).ok());
  ASSERT_TRUE(s->Submit(Request("The cat", 50), c).ok());
  ASSERT_TRUE(ha.ok());
  absl::SleepFor(absl::Milliseconds(50));
  (*ha)->Cancel();
  ASSERT_TRUE(a->Wait());
  ASSERT_TRUE(b->Wait());
  ASSERT_TRUE(c->Wait());
  EXPECT_EQ(a->finish.reason, FinishReason::kCancelled);
  EXPECT_EQ(b->finish.reason, FinishReason::kDeadline);
  EXPECT_LT(a->tokens.size(), 400u);
  EXPECT_LT(b->tokens.size(), 400u);
  EXPECT_EQ(c->tokens, expected);
  EXPECT_EQ(fakes_[0]->kv_used_tokens(), 0);
}

TEST_F(SchedulerTest, HungDeviceFailsOverMidStreamWithNoTokenLostOrRepeated) {
  const std::vector<int> expected = Alone("Lily and Tom went to the park", 80);
  SchedulerOptions o;
  // Long enough for dev1 to recompute the moved context in one step on a
  // busy machine under TSan (200 ms was not).
  o.step_timeout = absl::Seconds(1);
  o.routing = RoutingPolicy::kRoundRobin;
  auto s = Make(o, 2);
  std::vector<int> health;
  fakes_[0]->set_step_delay(absl::Milliseconds(2));
  GenerationRequest r = Request("Lily and Tom went to the park", 80);
  r.device = "dev0";
  auto obs = std::make_shared<Collect>();
  ASSERT_TRUE(s->Submit(r, obs).ok());
  const int probe_steps = fakes_[0]->steps();
  while (fakes_[0]->steps() < probe_steps + 20)
    absl::SleepFor(absl::Milliseconds(1));
  fakes_[0]->HangNextStep();
  ASSERT_TRUE(obs->Wait());
  EXPECT_TRUE(obs->finish.status.ok());
  EXPECT_EQ(obs->tokens, expected);
  EXPECT_EQ(obs->finish.failovers, 1);
  EXPECT_EQ(obs->devices.front(), "dev0");
  EXPECT_EQ(obs->devices.back(), "dev1");
  EXPECT_FALSE(s->Devices()[0].healthy);
  EXPECT_THAT(s->Devices()[0].last_error, ::testing::HasSubstr("longer than"));
  // Once it answers again, a probe brings it back.
  fakes_[0]->Unhang();
  for (int i = 0; i < 500 && !s->Devices()[0].healthy; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(s->Devices()[0].healthy);
}

TEST_F(SchedulerTest, RequestsWaitParkedWhileNoDeviceIsHealthy) {
  SchedulerOptions o;
  o.probe_backoff = absl::Milliseconds(20);
  auto s = Make(o, 1);
  fakes_[0]->FailNextSteps(3, absl::UnavailableError("link down"));
  auto obs = Run(*s, Request("The cat", 10));
  EXPECT_TRUE(obs->finish.status.ok()) << obs->finish.status;
  EXPECT_EQ(obs->tokens, Alone("The cat", 10));
  EXPECT_EQ(obs->finish.failovers, 1);
}

TEST_F(SchedulerTest, LowPriorityIsNotStarved) {
  SchedulerOptions o;
  o.max_batch_size = 1;
  o.priority_step = absl::Milliseconds(5);  // -10 vs +10: 100 ms of waiting.
  auto s = Make(o);
  fakes_[0]->set_step_delay(absl::Milliseconds(2));
  GenerationRequest high = Request("The cat", 5);  // ~12 ms each
  high.priority = 10;
  std::vector<std::shared_ptr<Collect>> highs;
  auto submit_high = [&] {
    high.arrival = absl::Now();
    highs.push_back(std::make_shared<Collect>());
    ASSERT_TRUE(s->Submit(high, highs.back()).ok());
  };
  for (int i = 0; i < 3; ++i) submit_high();
  GenerationRequest low = Request("Once", 5);
  low.priority = -10;
  low.arrival = absl::Now();
  auto low_obs = std::make_shared<Collect>();
  ASSERT_TRUE(s->Submit(low, low_obs).ok());
  // Keep the device saturated with newer high-priority work (one every 6 ms
  // against ~12 ms of service each) until the low one finishes. Without
  // aging it would wait until the stream stopped; the bound only keeps a
  // broken scheduler from hanging the test, and is generous because
  // sanitizer builds run several times slower.
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (!low_obs->done.HasBeenNotified() && absl::Now() < give_up) {
    submit_high();
    absl::SleepFor(absl::Milliseconds(6));
  }
  const size_t submitted_before_low_finished = highs.size();
  ASSERT_TRUE(low_obs->Wait(absl::ZeroDuration()))
      << "the low-priority request waited behind all newer work";
  for (auto& h : highs) ASSERT_TRUE(h->Wait());
  // It finished while newer high-priority work was still waiting.
  EXPECT_GT(highs[submitted_before_low_finished - 1]->finish.finish_time,
            low_obs->finish.finish_time);
  // And priority did matter: the first high-priority requests overtook it.
  EXPECT_LT(highs[2]->finish.finish_time, low_obs->finish.finish_time);
}

TEST_F(SchedulerTest, AdmissionLimitsRefuseAtOnce) {
  SchedulerOptions o;
  o.max_batch_size = 1;
  o.max_queued_requests = 2;
  o.max_queued_tokens = 30;
  auto s = Make(o);
  fakes_[0]->set_step_delay(absl::Milliseconds(20));
  GenerationRequest r = Request("Once", 50);
  r.ignore_eos = true;
  const int probe_steps = fakes_[0]->steps();
  auto keep = std::make_shared<Collect>();
  ASSERT_TRUE(s->Submit(r, keep).ok());
  while (fakes_[0]->steps() == probe_steps)
    absl::SleepFor(absl::Milliseconds(1));
  ASSERT_TRUE(s->Submit(r, std::make_shared<Collect>()).ok());
  std::string big(200, 'x');
  auto tokens = s->Submit(Request(big, 5), std::make_shared<Collect>());
  EXPECT_EQ(tokens.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(tokens.status().message()),
              ::testing::HasSubstr("prompt tokens"));
  ASSERT_TRUE(s->Submit(r, std::make_shared<Collect>()).ok());
  auto full = s->Submit(r, std::make_shared<Collect>());
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.status().message()),
              ::testing::HasSubstr("2 requests"));
  s->Shutdown();
  EXPECT_TRUE(keep->Wait());
}

TEST_F(SchedulerTest, TokenEnergiesAddUpToTheStepEnergy) {
  telemetry::Metrics metrics;
  SchedulerOptions o;
  o.metrics = &metrics;
  o.max_step_tokens = 20;  // Chunked prefill shares steps with decodes.
  const model::Config config = ckpt_->config();
  o.flops_at = [config](int pos) { return config.FlopsPerToken(pos); };
  std::vector<std::unique_ptr<device::Device>> devices;
  devices.push_back(MakeDevice("cpu"));
  std::vector<std::unique_ptr<telemetry::EnergyMeter>> meters;
  meters.push_back(std::make_unique<telemetry::PowerModelMeter>(
      telemetry::PowerModel{30.0, 5.0}));
  Scheduler s(std::move(devices), std::move(meters), o);
  std::vector<std::shared_ptr<Collect>> obs;
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    obs.push_back(std::make_shared<Collect>());
    ASSERT_TRUE(
        s.Submit(Request(kPrompts[i], 10 + 5 * i, 0.8f, i), obs.back()).ok());
  }
  double tokens_sum = 0;
  for (auto& o : obs) {
    ASSERT_TRUE(o->Wait());
    ASSERT_EQ(o->energies.size(), o->tokens.size());
    double mine = 0;
    for (double e : o->energies) {
      EXPECT_GT(e, 0);
      mine += e;
    }
    ASSERT_TRUE(o->finish.energy_joules.has_value());
    EXPECT_NEAR(*o->finish.energy_joules, mine, 1e-12 + 1e-9 * mine);
    EXPECT_EQ(o->finish.energy_source, device::EnergySource::kModeled);
    tokens_sum += mine;
  }
  double steps_sum = 0;
  for (const auto& family : metrics.registry()->Collect()) {
    if (family.name != "joule_energy_joules_total") continue;
    for (const auto& m : family.metric) steps_sum += m.counter.value;
  }
  ASSERT_GT(steps_sum, 0);
  EXPECT_NEAR(tokens_sum, steps_sum, 1e-3 * steps_sum);
}

// Two devices, the second slower (its steps sleep, outside its device
// time) but frugal or not by its power model: energy routing follows the
// models, latency routing the speed.
TEST_F(SchedulerTest, RoutingPricesDevicesByTheirMeasuredCosts) {
  auto placements = [&](RoutingPolicy policy, double watts0, double watts1) {
    std::vector<std::unique_ptr<device::Device>> devices;
    auto fast = MakeDevice("dev0");
    auto slow = MakeDevice("dev1");
    // Far slower than any step of dev0, even under a sanitizer.
    slow->set_step_delay(absl::Milliseconds(60));
    devices.push_back(std::move(fast));
    devices.push_back(std::move(slow));
    std::vector<std::unique_ptr<telemetry::EnergyMeter>> meters;
    meters.push_back(std::make_unique<telemetry::PowerModelMeter>(
        telemetry::PowerModel{watts0, 1.0}));
    meters.push_back(std::make_unique<telemetry::PowerModelMeter>(
        telemetry::PowerModel{watts1, 1.0}));
    telemetry::Metrics metrics;
    SchedulerOptions o;
    o.routing = policy;
    o.metrics = &metrics;
    Scheduler s(std::move(devices), std::move(meters), o);
    // Priced by the start-up probe, before any request ran.
    for (const DeviceStatus& d : s.Devices()) {
      EXPECT_GT(d.prefill.joules_per_token, 0) << d.capabilities.name;
      EXPECT_GT(d.decode.joules_per_token, 0) << d.capabilities.name;
      EXPECT_GT(d.seconds_per_step, 0) << d.capabilities.name;
    }
    std::map<std::string, int> on;
    for (int i = 0; i < 5; ++i) {
      on[Run(s, Request(kPrompts[i], 4))->finish.device]++;
    }
    return on;
  };
  EXPECT_EQ(placements(RoutingPolicy::kEnergy, 200, 1)["dev1"], 5);
  EXPECT_EQ(placements(RoutingPolicy::kEnergy, 1, 200)["dev0"], 5);
  EXPECT_EQ(placements(RoutingPolicy::kLatency, 200, 1)["dev0"], 5);
}

TEST_F(SchedulerTest, LogprobsComeWithEveryTokenOnlyWhenAsked) {
  auto s = Make({});
  GenerationRequest greedy = Request("Once upon a time", 12);
  greedy.logprobs = 3;
  auto with = Run(*s, greedy);
  ASSERT_FALSE(with->tokens.empty());
  ASSERT_EQ(with->logprobs.size(), with->tokens.size());
  for (size_t i = 0; i < with->tokens.size(); ++i) {
    ASSERT_TRUE(with->logprobs[i].has_value()) << i;
    const auto& top = with->top_logprobs[i];
    ASSERT_EQ(top.size(), 3u) << i;
    // At temperature 0 the chosen token is the most likely one.
    EXPECT_EQ(top[0].first, with->tokens[i]) << i;
    EXPECT_EQ(top[0].second, *with->logprobs[i]) << i;
    EXPECT_LE(top[0].second, 0.0f);
    EXPECT_GE(top[0].second, top[1].second);
    EXPECT_GE(top[1].second, top[2].second);
    double mass = 0;
    for (const auto& [id, lp] : top) mass += std::exp(lp);
    EXPECT_LE(mass, 1.0 + 1e-6);
  }

  // Asking for them changes no token; not asking leaves them out.
  greedy.logprobs = -1;
  auto without = Run(*s, greedy);
  EXPECT_EQ(without->tokens, with->tokens);
  for (size_t i = 0; i < without->tokens.size(); ++i) {
    EXPECT_FALSE(without->logprobs[i].has_value()) << i;
    EXPECT_TRUE(without->top_logprobs[i].empty()) << i;
  }

  // Sampled tokens get their own log-probability, wherever they rank, and
  // 0 asks for that alone.
  GenerationRequest sampled = Request("Once upon a time", 12, 1.0f, 7);
  sampled.logprobs = 0;
  auto hot = Run(*s, sampled);
  ASSERT_FALSE(hot->tokens.empty());
  for (size_t i = 0; i < hot->tokens.size(); ++i) {
    ASSERT_TRUE(hot->logprobs[i].has_value()) << i;
    EXPECT_LE(*hot->logprobs[i], 0.0f);
    EXPECT_TRUE(hot->top_logprobs[i].empty()) << i;
  }
  sampled.logprobs = -1;
  EXPECT_EQ(Run(*s, sampled)->tokens, hot->tokens);

  // Both are the log-softmax of the raw logits, also where sampling (unlike
  // a greedy pick) overwrites them: the first token's, against the engine
  // run directly on the prompt.
  auto oracle = MakeDevice("oracle");
  device::StepOutput out;
  ASSERT_TRUE(
      oracle->Step({device::SequenceChunk{1, 0, sampled.prompt}}, &out).ok());
  const absl::Span<const float> logits = out.row(0);
  const double max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float x : logits) sum += std::exp(x - max);
  const double lse = max + std::log(sum);
  EXPECT_NEAR(*hot->logprobs[0], logits[hot->tokens[0]] - lse, 1e-5);
  for (const auto& [id, lp] : with->top_logprobs[0]) {
    EXPECT_NEAR(lp, logits[id] - lse, 1e-5) << id;
  }

  for (int bad : {-2, kMaxLogprobs + 1}) {
    greedy.logprobs = bad;
    auto refused = s->Submit(greedy, std::make_shared<Collect>());
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(refused.status().message(), "logprobs must be in -1..20");
  }
}

TEST_F(SchedulerTest, ShutdownFinishesEveryAcceptedRequest) {
  auto s = Make({});
  fakes_[0]->set_step_delay(absl::Milliseconds(5));
  GenerationRequest req = Request("", 500);
  req.ignore_eos = true;
  std::vector<std::shared_ptr<Collect>> obs;
  for (int i = 0; i < 3; ++i) {
    obs.push_back(std::make_shared<Collect>());
    ASSERT_TRUE(s->Submit(req, obs.back()).ok());
  }
  absl::SleepFor(absl::Milliseconds(30));
  s->Shutdown();
  for (auto& o : obs) {
    EXPECT_TRUE(o->Wait(absl::Seconds(5)));
    EXPECT_EQ(o->finish.reason, FinishReason::kCancelled);
    EXPECT_EQ(o->finish.status.code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_EQ(s->Submit(req, std::make_shared<Collect>()).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace joule::scheduler
