// The simulated RISC-V device end to end: through the full server, against
// the CPU reference, and surviving its daemon's death.
#include "device/riscv/riscv_device.h"

#include <signal.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "device/cpu/reference_engine.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "proto/joule.grpc.pb.h"
#include "server/server.h"
#include "tests/reference_text.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

std::string Daemon() { return testing::Runfile("device/riscv/sim/riscv_simd"); }

class RiscvServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.checkpoint_path = testing::SharedModel("stories260K.bin");
    o.tokenizer_path = testing::SharedModel("tok512.bin");
    o.devices = {"riscv", "cpu"};
    o.energy.cpu_energy = "model";
    o.scheduler.probe_backoff = absl::Milliseconds(50);
    o.device_factory = [this](absl::string_view name)
        -> absl::StatusOr<std::unique_ptr<device::Device>> {
      if (name == "riscv") {
        device::RiscvOptions r;
        r.daemon_binary = Daemon();
        r.engine = engine();
        auto dev = std::make_unique<device::RiscvDevice>(r);
        riscv_ = dev.get();
        return dev;
      }
      return device::CreateDevice(name);
    };
    auto s = server::JouleServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    stub_ = v1::Joule::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                            grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_->Shutdown(absl::Seconds(2)); }
  virtual std::string engine() const { return ""; }

  struct Result {
    std::vector<v1::Token> tokens;
    v1::GenerationSummary summary;
    grpc::Status status;
    std::string text() const {
      std::string t;
      for (const auto& x : tokens) t += x.text();
      return t;
    }
  };
  Result Stream(v1::GenerateRequest req, int kill_after = -1) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    auto reader = stub_->GenerateStream(&ctx, req);
    Result r;
    v1::GenerateStreamResponse msg;
    while (reader->Read(&msg)) {
      if (msg.has_token()) {
        r.tokens.push_back(msg.token());
        if (static_cast<int>(r.tokens.size()) == kill_after) {
          kill(riscv_->daemon_pid(),
               SIGKILL);  // The simulator dies mid-stream.
        }
      } else {
        r.summary = msg.summary();
      }
    }
    r.status = reader->Finish();
    return r;
  }
  bool RiscvHealthy() {
    grpc::ClientContext ctx;
    v1::ListDevicesResponse d;
    EXPECT_TRUE(stub_->ListDevices(&ctx, {}, &d).ok());
    return d.devices(0).healthy();
  }

  std::unique_ptr<server::JouleServer> server_;
  std::unique_ptr<v1::Joule::Stub> stub_;
  device::RiscvDevice* riscv_ = nullptr;
};

TEST_F(RiscvServerTest, GreedyOnTheSimulatorMatchesTheReference) {
  v1::GenerateRequest req;
  req.set_temperature(0);
  req.set_max_tokens(256);
  req.set_device("riscv");
  req.set_pin_device(true);
  Result r = Stream(req);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.text(), testing::kStories260KGreedy);
  EXPECT_EQ(r.summary.device(), "riscv");
  EXPECT_EQ(r.summary.energy_source(), v1::ENERGY_SOURCE_SIMULATED);
  EXPECT_GT(r.summary.energy_joules(), 0);
  for (const auto& t : r.tokens) {
    EXPECT_EQ(t.device(), "riscv");
    EXPECT_EQ(t.energy_source(), v1::ENERGY_SOURCE_SIMULATED);
    EXPECT_GT(t.energy_joules(), 0);
  }
  // Simulated device time, not host time, is what the summary reports.
  EXPECT_GT(r.summary.decode_seconds(), 0);
  grpc::ClientContext ctx;
  v1::ListDevicesResponse d;
  ASSERT_TRUE(stub_->ListDevices(&ctx, {}, &d).ok());
  EXPECT_EQ(d.devices(0).kind(), v1::DEVICE_KIND_RISCV_SIM);
  EXPECT_EQ(d.devices(0).energy_source(), v1::ENERGY_SOURCE_SIMULATED);
  EXPECT_THAT(d.devices(0).description(), ::testing::HasSubstr("(simulated)"));
}

TEST_F(RiscvServerTest, KilledSimulatorMidStreamFailsOverWithoutLosingTokens) {
  v1::GenerateRequest req;
  req.set_temperature(0);
  req.set_max_tokens(200);
  req.set_ignore_eos(true);
  req.set_device("riscv");  // Preferred, not pinned.
  const pid_t first = riscv_->daemon_pid();
  ASSERT_GT(first, 0);
  Result r = Stream(req, /*kill_after=*/40);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_EQ(r.tokens.size(), 200u);
  EXPECT_EQ(r.text().substr(0, 120),
            std::string(testing::kStories260KGreedy).substr(0, 120));
  EXPECT_EQ(r.summary.failovers(), 1);
  EXPECT_EQ(r.tokens.front().device(), "riscv");
  EXPECT_EQ(r.tokens.back().device(), "cpu");
  // The same request on the CPU alone: identical tokens, none repeated.
  req.set_device("cpu");
  Result cpu = Stream(req);
  ASSERT_EQ(cpu.tokens.size(), r.tokens.size());
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    ASSERT_EQ(r.tokens[i].id(), cpu.tokens[i].id()) << "token " << i;
  }
  // Re-probed, the driver restarts its simulator and serves again.
  for (int i = 0; i < 200 && !RiscvHealthy(); ++i)
    absl::SleepFor(absl::Milliseconds(20));
  EXPECT_TRUE(RiscvHealthy());
  EXPECT_NE(riscv_->daemon_pid(), first);
  req.set_device("riscv");
  req.set_pin_device(true);
  req.set_max_tokens(20);
  Result again = Stream(req);
  EXPECT_TRUE(again.status.ok()) << again.status.error_message();
  EXPECT_EQ(again.summary.device(), "riscv");
}

// The same server with the simulator executing the cross-compiled kernels
// on its instruction-level clusters.
class RiscvIssServerTest : public RiscvServerTest {
 protected:
  std::string engine() const override { return "iss"; }
};

TEST_F(RiscvIssServerTest, GreedyStoriesFollowTheCpuReference) {
  // The kernels sum in their own order (4 staggered accumulators, packed
  // pairs, their own expf), so tokens may part from the reference's once
  // two candidates are nearly tied; they must agree for most of a story.
  // Sanitized builds simulate 5-15x slower: one shorter story there.
  const bool sanitized = std::getenv("JOULE_SANITIZED") != nullptr;
  std::vector<std::string> prompts = {"", "Once upon a time",
                                      "Tom and Mia went to the"};
  if (sanitized) prompts.resize(1);
  const int tokens = sanitized ? 40 : 128;
  int total_common = 0, total = 0;
  for (const std::string& prompt : prompts) {
    v1::GenerateRequest req;
    req.set_prompt(prompt);
    req.set_temperature(0);
    req.set_max_tokens(tokens);
    req.set_ignore_eos(true);
    req.set_device("cpu");
    req.set_pin_device(true);
    Result cpu = Stream(req);
    ASSERT_TRUE(cpu.status.ok()) << cpu.status.error_message();
    req.set_device("riscv");
    Result iss = Stream(req);
    ASSERT_TRUE(iss.status.ok()) << iss.status.error_message();
    ASSERT_EQ(iss.tokens.size(), cpu.tokens.size());
    size_t common = 0;
    while (common < cpu.tokens.size() &&
           iss.tokens[common].id() == cpu.tokens[common].id()) {
      ++common;
    }
    std::printf("prompt \"%s\": common prefix %zu of %zu tokens\n",
                prompt.c_str(), common, cpu.tokens.size());
    total_common += common;
    total += cpu.tokens.size();
    EXPECT_GE(common, cpu.tokens.size() / 4) << "prompt \"" << prompt << "\"";
    EXPECT_EQ(iss.summary.device(), "riscv");
    EXPECT_EQ(iss.summary.energy_source(), v1::ENERGY_SOURCE_SIMULATED);
    EXPECT_GT(iss.summary.energy_joules(), 0);
    EXPECT_GT(iss.summary.decode_seconds(), 0);
    for (const auto& t : iss.tokens) {
      EXPECT_EQ(t.energy_source(), v1::ENERGY_SOURCE_SIMULATED);
      EXPECT_GT(t.energy_joules(), 0);
    }
  }
  EXPECT_GE(total_common * 4, total * 3);  // Three quarters over all.
  grpc::ClientContext ctx;
  v1::ListDevicesResponse d;
  ASSERT_TRUE(stub_->ListDevices(&ctx, {}, &d).ok());
  EXPECT_THAT(d.devices(0).description(),
              ::testing::HasSubstr("engine iss (instruction-level)"));
}

TEST(RiscvDeviceTest, DecodeCountersMatchTheModelsAnalyticFlops) {
  auto ckpt = model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
  ASSERT_TRUE(ckpt.ok());
  device::RiscvOptions o;
  o.daemon_binary = Daemon();
  device::RiscvDevice dev(o);
  ASSERT_TRUE(dev.LoadModel(**ckpt).ok());
  device::StepOutput out;
  std::vector<int> prompt(100, 100);
  prompt[0] = 1;
  ASSERT_TRUE(dev.Step({{1, 0, prompt}}, &out).ok());
  std::vector<int> one = {42};
  ASSERT_TRUE(dev.Step({{1, 100, one}}, &out).ok());
  const riscv::Counters c = dev.last_step_counters();
  const double analytic = (*ckpt)->config().FlopsPerToken(100);
  // Norms, RoPE, softmax and SwiGLU add a few percent to the matmuls and
  // attention the analytic count covers.
  EXPECT_GE(c.flops[1], analytic);
  EXPECT_LT(c.flops[1], 1.10 * analytic);
  EXPECT_EQ(c.launches, 5u * 10 + 3);
  EXPECT_GT(c.cycles, 0u);
  EXPECT_NEAR(absl::ToDoubleSeconds(out.device_time), c.cycles / 1e9, 1e-12);
  EXPECT_NEAR(*out.energy_joules, c.energy_joules, 1e-15);
  EXPECT_EQ(c.flops[0] + c.flops[2] + c.flops[3], 0u);  // fp32 only.
}

}  // namespace
}  // namespace joule
