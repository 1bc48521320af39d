// The shipped binaries as a user runs them: joule_server in its own process
// with its default model, found through gRPC reflection and health checks the
// way grpcurl and ghz find it, and joule_cli against it.
#include <signal.h>

#include <memory>
#include <regex>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "proto/health.grpc.pb.h"
#include "tests/protos/reflection.grpc.pb.h"
#include "tests/reference_text.h"
#include "tests/subprocess.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using testing::Runfile;

class ServerBinaryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new std::string(testing::TempDir());
    // The default model comes from the runfiles, as with `bazel run`.
    setenv("RUNFILES_DIR", std::getenv("TEST_SRCDIR"), 1);
    server_ = new testing::Subprocess(
        {Runfile("server/joule_server"), "--host=127.0.0.1", "--port=0",
         "--metrics_port=0", "--http_port=0",
         "--shutdown_delay_seconds=" + std::to_string(kShutdownDelaySeconds)},
        *tmp_ + "/server.out", *tmp_ + "/server.err");
    ASSERT_TRUE(server_->started());
    const std::regex listening("listening on 127\\.0\\.0\\.1:(\\d+)");
    const std::regex http("HTTP API on http://127\\.0\\.0\\.1:(\\d+)");
    for (int i = 0; i < 1000 && (port_ == 0 || http_port_ == 0); ++i) {
      std::smatch m;
      std::string err = server_->Stderr();
      if (std::regex_search(err, m, listening)) port_ = std::stoi(m[1]);
      if (std::regex_search(err, m, http)) http_port_ = std::stoi(m[1]);
      absl::SleepFor(absl::Milliseconds(10));
    }
    ASSERT_NE(port_, 0) << server_->Stderr();
    ASSERT_NE(http_port_, 0) << server_->Stderr();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel(target(), grpc::InsecureChannelCredentials());
  }
  testing::RunResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(),
                {Runfile("clients/joule_cli"), "--target=" + target()});
    return testing::Run(args, *tmp_);
  }

  static constexpr int kShutdownDelaySeconds = 4;
  static std::string* tmp_;
  static testing::Subprocess* server_;
  static int port_;
  static int http_port_;
};

std::string* ServerBinaryTest::tmp_ = nullptr;
testing::Subprocess* ServerBinaryTest::server_ = nullptr;
int ServerBinaryTest::port_ = 0;
int ServerBinaryTest::http_port_ = 0;

TEST_F(ServerBinaryTest, ReflectionListsServicesAndDescribesTheApi) {
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(Channel());
  grpc::ClientContext ctx;
  auto stream = stub->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest req;
  grpc::reflection::v1alpha::ServerReflectionResponse resp;

  req.set_list_services("");
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  std::vector<std::string> names;
  for (const auto& s : resp.list_services_response().service())
    names.push_back(s.name());
  EXPECT_THAT(names, Contains("joule.v1.Joule"));
  EXPECT_THAT(names, Contains("grpc.health.v1.Health"));

  req.set_file_containing_symbol("joule.v1.Joule");
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_GT(resp.file_descriptor_response().file_descriptor_proto_size(), 0);
  google::protobuf::FileDescriptorProto file;
  ASSERT_TRUE(file.ParseFromString(
      resp.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(file.package(), "joule.v1");
  bool found = false;
  for (const auto& svc : file.service()) {
    for (const auto& m : svc.method()) {
      if (m.name() == "GenerateStream") {
        found = true;
        EXPECT_TRUE(m.server_streaming());
        EXPECT_EQ(m.input_type(), ".joule.v1.GenerateRequest");
      }
    }
  }
  EXPECT_TRUE(found);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ServerBinaryTest, HealthServiceReportsServing) {
  auto stub = grpc::health::v1::Health::NewStub(Channel());
  for (const char* service : {"", "joule.v1.Joule"}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(stub->Check(&ctx, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
}

TEST_F(ServerBinaryTest, CliStreamsTheGreedyReference) {
  testing::RunResult r = Cli({"--temperature=0", "--max_tokens=256"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, std::string(testing::kStories260KGreedy) + "\n");
  EXPECT_THAT(r.err, HasSubstr("[256 tokens on cpu"));
  EXPECT_THAT(r.err, HasSubstr("tok/s"));
  EXPECT_THAT(r.err, HasSubstr("TTFT"));
}

TEST_F(ServerBinaryTest, CliReportsErrorsWithTheStatusName) {
  testing::RunResult r = Cli({"--top_p=2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err,
              HasSubstr("error: INVALID_ARGUMENT: top_p must be in (0, 1]"));
  r = Cli({"--device=gpu"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: unknown device 'gpu'"));
}

TEST_F(ServerBinaryTest, CliListsDevices) {
  testing::RunResult r = Cli({"--list_devices"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("cpu"));
  EXPECT_THAT(r.out, HasSubstr("healthy"));
}

// Runs last (gtest keeps declaration order within a suite). During
// --shutdown_delay_seconds the server says NOT_SERVING on both health
// endpoints and still serves calls on both APIs; then it drains and exits.
TEST_F(ServerBinaryTest, SigtermShutsDownCleanly) {
  const absl::Time sent = absl::Now();
  server_->Signal(SIGTERM);
  auto health = grpc::health::v1::Health::NewStub(Channel());
  grpc::health::v1::HealthCheckResponse::ServingStatus status =
      grpc::health::v1::HealthCheckResponse::SERVING;
  for (int i = 0;
       i < 100 && status == grpc::health::v1::HealthCheckResponse::SERVING;
       ++i) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
    status = resp.status();
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(status, grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  httplib::Client http("127.0.0.1", http_port_);
  auto ready = http.Get("/health");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_THAT(ready->body, HasSubstr("draining"));
  auto completion = http.Post(
      "/v1/completions",
      R"({"model": "stories260K.bin", "prompt": "Once", "max_tokens": 4})",
      "application/json");
  ASSERT_TRUE(completion);
  EXPECT_EQ(completion->status, 200) << completion->body;
  testing::RunResult served = Cli({"--max_tokens=4"});
  EXPECT_EQ(served.code, 0) << served.err;
  EXPECT_LT(absl::Now() - sent, absl::Seconds(kShutdownDelaySeconds))
      << "the checks above ran after the delay: they prove nothing";

  EXPECT_EQ(server_->Wait(absl::Seconds(20)), 0) << server_->Stderr();
  EXPECT_GE(absl::Now() - sent, absl::Seconds(kShutdownDelaySeconds));
  EXPECT_THAT(server_->Stderr(), HasSubstr("NOT_SERVING, still serving"));
  EXPECT_THAT(server_->Stderr(), HasSubstr("SIGTERM: draining"));
  EXPECT_THAT(server_->Stderr(), HasSubstr("stopped"));
  testing::RunResult r = Cli({"--max_tokens=2", "--deadline_seconds=2"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("error: UNAVAILABLE"));
}

}  // namespace
}  // namespace joule
