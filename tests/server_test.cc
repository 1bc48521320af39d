// The gRPC API end to end, with the server in-process on an ephemeral port.
#include "server/server.h"

#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "device/cpu/reference_engine.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "model/convert.h"
#include "proto/joule.grpc.pb.h"
#include "tests/fake_device.h"
#include "proto/health.grpc.pb.h"
#include "tests/reference_text.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

using ::testing::HasSubstr;

struct StreamResult {
  std::vector<v1::Token> tokens;
  std::optional<v1::GenerationSummary> summary;
  bool summary_was_last = true;
  grpc::Status status;
  std::string text() const {
    std::string t;
    for (const auto& tok : tokens) t += tok.text();
    return t;
  }
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  void Start(scheduler::SchedulerOptions sched) {
    server::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.checkpoint_path = checkpoint_override_.empty()
                            ? testing::SharedModel("stories260K.bin")
                            : checkpoint_override_;
    o.tokenizer_path = testing::SharedModel("tok512.bin");
    o.devices = {"cpu", "slow"};
    o.scheduler = sched;
    // The power model, whatever the machine: figures are then predictable.
    o.energy.cpu_energy = "model";
    o.device_factory = [this](absl::string_view name)
        -> absl::StatusOr<std::unique_ptr<device::Device>> {
      auto ref = std::make_unique<device::ReferenceEngine>(
          device::ReferenceEngine::Options{std::string(name)});
      if (name != "slow") return ref;
      auto fake = std::make_unique<testing::FakeDevice>(std::move(ref), "slow");
      fake->set_step_delay(absl::Milliseconds(5));
      slow_ = fake.get();
      return fake;
    };
    auto s = server::JouleServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    stub_ = v1::Joule::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                            grpc::InsecureChannelCredentials()));
  }

  StreamResult Stream(const v1::GenerateRequest& req,
                      absl::Duration deadline = absl::Seconds(60),
                      int cancel_after_tokens = -1) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    auto reader = stub_->GenerateStream(&ctx, req);
    StreamResult r;
    v1::GenerateStreamResponse msg;
    while (reader->Read(&msg)) {
      if (msg.has_token()) {
        if (r.summary) r.summary_was_last = false;
        r.tokens.push_back(msg.token());
        if (static_cast<int>(r.tokens.size()) == cancel_after_tokens)
          ctx.TryCancel();
      } else if (msg.has_summary()) {
        r.summary = msg.summary();
      }
    }
    r.status = reader->Finish();
    return r;
  }

  v1::GenerateRequest Greedy(int max_tokens) {
    v1::GenerateRequest req;
    req.set_temperature(0);
    req.set_max_tokens(max_tokens);
    return req;
  }

  // Waits until the slow device holds no KV cache.
  bool SlowDeviceDrains() {
    for (int i = 0; i < 500; ++i) {
      if (slow_->kv_used_tokens() == 0) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  std::unique_ptr<server::JouleServer> server_;
  std::unique_ptr<v1::Joule::Stub> stub_;
  testing::FakeDevice* slow_ = nullptr;
  std::string checkpoint_override_;
};

TEST_F(ServerTest, GreedyStreamReproducesLlama2cReference) {
  StreamResult r = Stream(Greedy(256));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.text(), testing::kStories260KGreedy);
  ASSERT_TRUE(r.summary.has_value());
  EXPECT_TRUE(r.summary_was_last);
  const v1::GenerationSummary& s = *r.summary;
  EXPECT_EQ(s.completion_tokens(), static_cast<int>(r.tokens.size()));
  EXPECT_EQ(s.prompt_tokens(), 1);
  EXPECT_EQ(s.stop_reason(), v1::STOP_REASON_LENGTH);
  EXPECT_GT(s.time_to_first_token_seconds(), 0);
  EXPECT_GE(s.total_seconds(), s.time_to_first_token_seconds());
  EXPECT_GT(s.mean_inter_token_latency_seconds(), 0);
  EXPECT_FALSE(s.request_id().empty());
  EXPECT_NEAR(r.tokens[0].latency_seconds(), s.time_to_first_token_seconds(),
              0.05);
  double joules = 0;
  for (const auto& t : r.tokens) {
    EXPECT_GE(t.latency_seconds(), 0);
    EXPECT_FALSE(t.device().empty());
    ASSERT_TRUE(t.has_energy_joules());
    EXPECT_GT(t.energy_joules(), 0);
    EXPECT_EQ(t.energy_source(), v1::ENERGY_SOURCE_MODELED);
    joules += t.energy_joules();
  }
  // Per-token energies add up to the request's; J/token is their mean.
  EXPECT_EQ(s.energy_source(), v1::ENERGY_SOURCE_MODELED);
  EXPECT_NEAR(s.energy_joules(), joules, 1e-9 * joules);
  EXPECT_NEAR(s.joules_per_token(), joules / r.tokens.size(), 1e-12);
}

TEST_F(ServerTest, UnaryGenerateMatchesStream) {
  v1::GenerateRequest req = Greedy(64);
  req.set_prompt("Lily and Tom");
  StreamResult streamed = Stream(req);
  ASSERT_TRUE(streamed.status.ok());
  grpc::ClientContext ctx;
  v1::GenerateResponse resp;
  ASSERT_TRUE(stub_->Generate(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.text(), streamed.text());
  EXPECT_EQ(resp.tokens_size(), static_cast<int>(streamed.tokens.size()));
  EXPECT_EQ(resp.summary().prompt_tokens(), streamed.summary->prompt_tokens());
  EXPECT_GT(resp.summary().prompt_tokens(), 2);
}

TEST_F(ServerTest, SameSeedSameTokens) {
  v1::GenerateRequest req;
  req.set_prompt("Once");
  req.set_max_tokens(40);
  req.set_temperature(0.9f);
  req.set_top_p(0.95f);
  req.set_seed(42);
  StreamResult a = Stream(req), b = Stream(req);
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  EXPECT_EQ(a.text(), b.text());
  EXPECT_EQ(a.summary->seed(), 42u);
  // Unset seed: the server reports the one it chose, which replays.
  req.clear_seed();
  StreamResult c = Stream(req);
  ASSERT_TRUE(c.status.ok());
  req.set_seed(c.summary->seed());
  EXPECT_EQ(Stream(req).text(), c.text());
}

TEST_F(ServerTest, StopSequenceEndsGenerationAndIsNotReturned) {
  v1::GenerateRequest req = Greedy(256);
  req.add_stop("Lily");
  StreamResult r = Stream(req);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.text(), "Once upon a time, there was a little girl named ");
  EXPECT_EQ(r.summary->stop_reason(), v1::STOP_REASON_STOP_SEQUENCE);
  EXPECT_EQ(r.summary->stop_sequence(), "Lily");
  EXPECT_LT(r.summary->completion_tokens(), 20);
}

TEST_F(ServerTest, MaxTokensAndContextLimit) {
  StreamResult r = Stream(Greedy(5));
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.tokens.size(), 5u);
  // Past the context: stops when it is full (512 positions, 1 prompt token).
  v1::GenerateRequest req = Greedy(100000);
  req.set_ignore_eos(true);
  StreamResult full = Stream(req);
  ASSERT_TRUE(full.status.ok());
  EXPECT_EQ(full.tokens.size(), 512u);
  EXPECT_EQ(full.summary->stop_reason(), v1::STOP_REASON_LENGTH);
}

TEST_F(ServerTest, EndOfSequenceStopsUnlessIgnored) {
  slow_->set_step_delay(absl::ZeroDuration());
  slow_->ForceTokenAtDecode(3, /*EOS=*/2);
  v1::GenerateRequest req = Greedy(20);
  req.set_prompt("Once upon");  // Several tokens: the first comes from prefill.
  req.set_device("slow");
  StreamResult r = Stream(req);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_EQ(r.tokens.size(), 5u);
  EXPECT_TRUE(r.tokens.back().special());
  EXPECT_EQ(r.tokens.back().id(), 2);
  EXPECT_EQ(r.tokens.back().text(), "");
  EXPECT_EQ(r.summary->stop_reason(), v1::STOP_REASON_EOS);

  slow_->ForceTokenAtDecode(3, 2);
  req.set_ignore_eos(true);
  StreamResult ignored = Stream(req);
  ASSERT_TRUE(ignored.status.ok());
  EXPECT_EQ(ignored.tokens.size(), 20u);
  EXPECT_EQ(ignored.summary->stop_reason(), v1::STOP_REASON_LENGTH);
}

TEST_F(ServerTest, InvalidRequestsGetInvalidArgumentSayingWhatToFix) {
  struct Case {
    std::function<void(v1::GenerateRequest&)> set;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](auto& r) { r.set_max_tokens(0); }, "max_tokens must be at least 1"},
      {[](auto& r) { r.set_max_tokens(-5); }, "max_tokens must be at least 1"},
      {[](auto& r) { r.set_temperature(-0.5f); }, "temperature must be"},
      {[](auto& r) { r.set_temperature(std::nanf("")); },
       "temperature must be"},
      {[](auto& r) { r.set_top_p(0.0f); }, "top_p must be in (0, 1]"},
      {[](auto& r) { r.set_top_p(1.5f); }, "top_p must be in (0, 1]"},
      {[](auto& r) { r.set_top_k(-1); }, "top_k must be >= 0"},
      {[](auto& r) { r.set_device("tpu"); },
       "unknown device 'tpu'; this server has: cpu, slow"},
      {[](auto& r) { r.set_pin_device(true); }, "pin_device needs a device"},
      {[](auto& r) { r.add_stop(""); }, "stop[0] is empty"},
      {[](auto& r) {
         for (int i = 0; i < 17; ++i) r.add_stop("x");
       },
       "at most 16 stop"},
      {[](auto& r) { r.set_request_id(std::string(200, 'r')); },
       "request_id is 200 bytes"},
      {[](auto& r) {
         std::string p;
         for (int i = 0; i < 600; ++i) p += "zq ";
         r.set_prompt(p);
       },
       "but the model's context is 512 tokens; shorten the prompt"},
      {[](auto& r) { r.set_prompt(std::string(100000, 'a')); },
       "shorten the prompt"},
  };
  for (const Case& c : cases) {
    v1::GenerateRequest req = Greedy(4);
    c.set(req);
    StreamResult r = Stream(req);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.message;
    EXPECT_THAT(r.status.error_message(), HasSubstr(c.message));
    EXPECT_TRUE(r.tokens.empty());
    grpc::ClientContext ctx;
    v1::GenerateResponse resp;
    EXPECT_EQ(stub_->Generate(&ctx, req, &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST_F(ServerTest, ClientCancellationStopsGenerationAndFreesTheSequence) {
  v1::GenerateRequest req = Greedy(400);
  req.set_ignore_eos(true);
  req.set_device("slow");
  const int steps_before = slow_->steps();
  StreamResult r = Stream(req, absl::Seconds(60), /*cancel_after_tokens=*/3);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_FALSE(r.summary.has_value());
  EXPECT_TRUE(SlowDeviceDrains());
  EXPECT_GE(slow_->releases(), 1);
  // Generation stopped long before 400 steps.
  absl::SleepFor(absl::Milliseconds(100));
  const int steps = slow_->steps() - steps_before;
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(slow_->steps() - steps_before, steps);
  EXPECT_LT(steps, 100);
}

TEST_F(ServerTest, DeadlineStopsGenerationAndFreesTheSequence) {
  v1::GenerateRequest req = Greedy(400);
  req.set_ignore_eos(true);
  req.set_device("slow");
  StreamResult r = Stream(req, absl::Milliseconds(200));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_GT(r.tokens.size(), 0u);
  EXPECT_LT(r.tokens.size(), 400u);
  EXPECT_TRUE(SlowDeviceDrains());
}

TEST_F(ServerTest, FailedDeviceStepMovesTheStreamWithoutLosingTokens) {
  v1::GenerateRequest req = Greedy(60);
  req.set_ignore_eos(true);
  req.set_device("cpu");
  const std::string clean = Stream(req).text();  // On cpu, uninterrupted.
  req.set_device("slow");  // Preferred, not pinned: may move.
  const int before = slow_->steps();
  std::thread breaker([this, before] {
    while (slow_->steps() < before + 8) absl::SleepFor(absl::Milliseconds(1));
    slow_->FailNextSteps(1, absl::UnavailableError("injected step failure"));
  });
  StreamResult r = Stream(req, absl::Seconds(20));
  breaker.join();
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.text(), clean);  // Nothing lost, nothing duplicated.
  EXPECT_EQ(r.tokens.size(), 60u);
  EXPECT_EQ(r.summary->failovers(), 1);
  EXPECT_EQ(r.summary->device(), "cpu");
  EXPECT_EQ(r.tokens.front().device(), "slow");
  EXPECT_EQ(r.tokens.back().device(), "cpu");
  EXPECT_TRUE(SlowDeviceDrains());
}

TEST_F(ServerTest, PinnedRequestFailsWithItsDeviceAndTheDeviceRecovers) {
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                          grpc::InsecureChannelCredentials()));
  auto status_of = [&](const std::string& service) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    EXPECT_TRUE(health->Check(&ctx, req, &resp).ok()) << service;
    return resp.status();
  };
  using Health = grpc::health::v1::HealthCheckResponse;
  EXPECT_EQ(status_of("joule.v1.Joule.slow"), Health::SERVING);
  slow_->set_step_delay(absl::Milliseconds(50));  // Slow probes: time to look.
  // It keeps failing (its re-probes too) until the checks below are done:
  // with a fixed count, a re-probe could succeed before they looked.
  slow_->FailNextSteps(1 << 30, absl::InternalError("driver bug"));
  v1::GenerateRequest req = Greedy(10);
  req.set_device("slow");
  req.set_pin_device(true);
  StreamResult r = Stream(req, absl::Seconds(10));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(r.status.error_message(), HasSubstr("driver bug"));
  EXPECT_THAT(r.status.error_message(), HasSubstr("pinned"));
  EXPECT_EQ(status_of("joule.v1.Joule.slow"), Health::NOT_SERVING);
  EXPECT_EQ(status_of("joule.v1.Joule"), Health::SERVING);  // cpu is up.
  {
    grpc::ClientContext ctx;
    v1::ListDevicesResponse devices;
    ASSERT_TRUE(stub_->ListDevices(&ctx, {}, &devices).ok());
    EXPECT_FALSE(devices.devices(1).healthy());
    EXPECT_EQ(devices.devices(1).last_error(), "driver bug");
  }
  // Re-probed with backoff, the device serves again once it works.
  slow_->StopFailing();
  for (int i = 0; i < 300; ++i) {
    grpc::ClientContext ctx;
    v1::ListDevicesResponse devices;
    ASSERT_TRUE(stub_->ListDevices(&ctx, {}, &devices).ok());
    if (devices.devices(1).healthy()) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(Stream(req).status.ok());
  EXPECT_EQ(status_of("joule.v1.Joule.slow"), Health::SERVING);
}

TEST_F(ServerTest, ServesInt8Checkpoints) {
  server_->Shutdown(absl::Seconds(1));
  auto fp32 = model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
  ASSERT_TRUE(fp32.ok());
  const std::string q8 = testing::TempDir() + "/server_q8.bin";
  ASSERT_TRUE(model::ConvertCheckpoint(**fp32, q8, 2, 0).ok());
  checkpoint_override_ = q8;
  Start({});
  grpc::ClientContext ctx;
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModelInfo(&ctx, {}, &info).ok());
  EXPECT_EQ(info.checkpoint_version(), 2);
  EXPECT_EQ(info.weight_format(), "int8 (Q8_0)");
  EXPECT_EQ(info.group_size(), 4);
  StreamResult r = Stream(Greedy(64));
  ASSERT_TRUE(r.status.ok());
  // int8 weights keep stories260K's greedy start (see converter_test).
  EXPECT_EQ(r.text().substr(0, 60),
            std::string(testing::kStories260KGreedy).substr(0, 60));
}

TEST_F(ServerTest, ListDevicesAndModelInfo) {
  grpc::ClientContext c1;
  v1::ListDevicesResponse devices;
  ASSERT_TRUE(stub_->ListDevices(&c1, {}, &devices).ok());
  ASSERT_EQ(devices.devices_size(), 2);
  EXPECT_EQ(devices.devices(0).name(), "cpu");
  EXPECT_EQ(devices.devices(0).kind(), v1::DEVICE_KIND_CPU);
  EXPECT_EQ(devices.devices(0).max_context(), 512);
  EXPECT_TRUE(devices.devices(0).healthy());
  EXPECT_EQ(devices.devices(0).precision(), "fp32");

  grpc::ClientContext c2;
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModelInfo(&c2, {}, &info).ok());
  EXPECT_EQ(info.name(), "stories260K.bin");
  EXPECT_EQ(info.dim(), 64);
  EXPECT_EQ(info.parameters(), 260032);
  EXPECT_EQ(info.vocab_size(), 512);
  EXPECT_EQ(info.max_context(), 512);
  EXPECT_EQ(info.checkpoint_version(), 0);
}

TEST_F(ServerTest, GracefulShutdownFinishesRunningStreams) {
  v1::GenerateRequest req = Greedy(40);
  req.set_ignore_eos(true);
  req.set_device("slow");
  const int probe_steps = slow_->steps();  // The probe before serving.
  std::thread stopper([this, probe_steps] {
    while (slow_->steps() == probe_steps)
      absl::SleepFor(absl::Milliseconds(1));
    server_->Shutdown(absl::Seconds(10));
  });
  StreamResult r = Stream(req);
  stopper.join();
  EXPECT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.tokens.size(), 40u);
  ASSERT_TRUE(r.summary.has_value());
  // New calls are refused once it is down.
  EXPECT_FALSE(Stream(Greedy(2), absl::Seconds(2)).status.ok());
}

TEST_F(ServerTest, FullQueueGetsResourceExhaustedAtOnce) {
  server_->Shutdown(absl::Seconds(1));
  scheduler::SchedulerOptions sched;
  sched.max_queued_requests = 1;
  sched.max_batch_size = 1;  // One running, one waiting, the third refused.
  Start(sched);
  slow_->set_step_delay(absl::Milliseconds(20));
  v1::GenerateRequest req = Greedy(20);
  req.set_ignore_eos(true);
  req.set_device("slow");
  std::vector<StreamResult> results(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] { results[i] = Stream(req); });
    absl::SleepFor(absl::Milliseconds(60));  // Keep the arrival order.
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(results[0].status.ok());
  EXPECT_TRUE(results[1].status.ok());
  EXPECT_EQ(results[2].status.error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(results[2].status.error_message(), HasSubstr("server is full"));
}

}  // namespace
}  // namespace joule
