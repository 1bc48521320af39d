#include "scheduler/scheduler.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "device/cpu/reference_engine.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"
#include "tests/fake_device.h"
#include "tests/test_paths.h"

namespace joule::scheduler {
namespace {

class Collect : public GenerationObserver {
 public:
  bool OnToken(const TokenEvent& e) override {
    tokens.push_back(e.token);
    return true;
  }
  void OnFinish(const FinishEvent& e) override {
    finish = e;
    done.Notify();
  }
  std::vector<int> tokens;
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

  // Runs greedy generation of `prompt` with prefill chunks of `chunk`.
  std::shared_ptr<Collect> Generate(const std::string& prompt, int chunk,
                                    int* prefill_steps) {
    auto ref = std::make_unique<device::ReferenceEngine>(
        device::ReferenceEngine::Options{});
    EXPECT_TRUE(ref->LoadModel(*ckpt_).ok());
    auto fake = std::make_unique<testing::FakeDevice>(std::move(ref), "cpu");
    testing::FakeDevice* dev = fake.get();
    std::vector<std::unique_ptr<device::Device>> devices;
    devices.push_back(std::move(fake));
    SchedulerOptions options;
    options.max_step_tokens = chunk;
    options.max_batch_size = 1;
    Scheduler sched(std::move(devices), options);
    GenerationRequest req;
    req.prompt = tok_->Encode(prompt, true);
    req.sampling.temperature = 0;
    req.max_tokens = 30;
    auto obs = std::make_shared<Collect>();
    EXPECT_TRUE(sched.Submit(req, obs).ok());
    obs->done.WaitForNotification();
    *prefill_steps = dev->steps() - (static_cast<int>(obs->tokens.size()) - 1);
    EXPECT_EQ(dev->kv_used_tokens(), 0);  // Released at the end.
    return obs;
  }

  std::unique_ptr<model::Checkpoint> ckpt_;
  std::unique_ptr<model::Tokenizer> tok_;
};

TEST_F(SchedulerTest, ChunkedPrefillGivesTheSameTokens) {
  const std::string prompt =
      "Once upon a time, there was a little girl named Lily who loved";
  const int n = static_cast<int>(tok_->Encode(prompt, true).size());
  ASSERT_GT(n, 10);
  int whole_steps = 0, chunked_steps = 0;
  auto whole = Generate(prompt, 512, &whole_steps);
  auto chunked = Generate(prompt, 3, &chunked_steps);
  EXPECT_EQ(whole_steps, 1);
  EXPECT_EQ(chunked_steps, (n + 2) / 3);
  EXPECT_EQ(whole->tokens, chunked->tokens);
  EXPECT_EQ(whole->tokens.size(), 30u);
  EXPECT_EQ(chunked->finish.reason, FinishReason::kLength);
  EXPECT_EQ(chunked->finish.prompt_tokens, n);
  EXPECT_EQ(chunked->finish.completion_tokens, 30);
}

TEST_F(SchedulerTest, ShutdownFinishesQueuedRequests) {
  auto ref = std::make_unique<device::ReferenceEngine>(
      device::ReferenceEngine::Options{});
  ASSERT_TRUE(ref->LoadModel(*ckpt_).ok());
  auto fake = std::make_unique<testing::FakeDevice>(std::move(ref), "cpu");
  fake->set_step_delay(absl::Milliseconds(5));
  std::vector<std::unique_ptr<device::Device>> devices;
  devices.push_back(std::move(fake));
  Scheduler sched(std::move(devices), {});
  GenerationRequest req;
  req.prompt = {1};
  req.max_tokens = 500;
  req.ignore_eos = true;
  std::vector<std::shared_ptr<Collect>> obs;
  for (int i = 0; i < 3; ++i) {
    obs.push_back(std::make_shared<Collect>());
    ASSERT_TRUE(sched.Submit(req, obs.back()).ok());
  }
  absl::SleepFor(absl::Milliseconds(30));
  sched.Shutdown();
  // Every accepted request hears how it ended: none is lost.
  for (auto& o : obs) {
    EXPECT_TRUE(o->done.WaitForNotificationWithTimeout(absl::Seconds(5)));
    EXPECT_EQ(o->finish.reason, FinishReason::kCancelled);
    EXPECT_EQ(o->finish.status.code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_EQ(sched.Submit(req, std::make_shared<Collect>()).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace joule::scheduler
