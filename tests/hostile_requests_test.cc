// Requests an attacker would send, through the whole gRPC path: each must get
// a clear status, and the server must keep serving afterwards.
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "device/cpu/reference_engine.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/joule.grpc.pb.h"
#include "server/server.h"
#include "tests/reference_text.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

using ::testing::HasSubstr;

class HostileRequestsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.checkpoint_path = testing::SharedModel("stories260K.bin");
    o.tokenizer_path = testing::SharedModel("tok512.bin");
    o.devices = {"cpu"};
    o.energy.cpu_energy = "model";
    auto s = server::JouleServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    stub_ = v1::Joule::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                            grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_->Shutdown(absl::Seconds(1)); }

  grpc::Status Generate(const v1::GenerateRequest& req,
                        v1::GenerateResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    return stub_->Generate(&ctx, req, resp);
  }

  // Streams, returning the final status and the text.
  grpc::Status Stream(const v1::GenerateRequest& req, std::string* text) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    auto reader = stub_->GenerateStream(&ctx, req);
    v1::GenerateStreamResponse msg;
    while (reader->Read(&msg)) {
      if (msg.has_token()) *text += msg.token().text();
    }
    return reader->Finish();
  }

  void ExpectStillServing() {
    v1::GenerateRequest req;
    req.set_temperature(0);
    req.set_max_tokens(256);
    std::string text;
    ASSERT_TRUE(Stream(req, &text).ok());
    EXPECT_EQ(text, testing::kStories260KGreedy);
  }

  std::unique_ptr<server::JouleServer> server_;
  std::unique_ptr<v1::Joule::Stub> stub_;
};

// Regression: 1/temperature overflowed and the sampler read back() of an
// empty candidate list: SIGSEGV, the whole server gone.
TEST_F(HostileRequestsTest, SubnormalTemperatureWithTopPIsGreedy) {
  v1::GenerateRequest req;
  req.set_temperature(1e-45f);
  req.set_top_p(0.9f);
  req.set_max_tokens(256);
  std::string text;
  grpc::Status s = Stream(req, &text);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(text, testing::kStories260KGreedy);
  ExpectStillServing();
}

// Regression: protobuf's parser failed on these with no message, and gRPC
// answered INTERNAL with an empty one.
TEST_F(HostileRequestsTest, InvalidUtf8IsInvalidArgumentNamingTheField) {
  struct Case {
    void (*set)(v1::GenerateRequest*);
    const char* want;
  };
  const Case cases[] = {
      {[](v1::GenerateRequest* r) { r->set_prompt("Once \xff upon"); },
       "prompt is not valid UTF-8 (byte 5"},
      {[](v1::GenerateRequest* r) { r->add_stop("\xc3"); },
       "stop[0] is not valid UTF-8"},
      {[](v1::GenerateRequest* r) { r->set_request_id("\xed\xa0\x80"); },
       "request_id is not valid UTF-8"},
  };
  for (const Case& c : cases) {
    v1::GenerateRequest req;
    req.set_max_tokens(4);
    c.set(&req);
    v1::GenerateResponse resp;
    grpc::Status s = Generate(req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.want;
    EXPECT_THAT(s.error_message(), HasSubstr(c.want));
    std::string text;
    s = Stream(req, &text);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.want;
    EXPECT_THAT(s.error_message(), HasSubstr(c.want));
  }
  ExpectStillServing();
}

// Regression: such ids reached the log verbatim (forged lines, terminal
// escapes).
TEST_F(HostileRequestsTest, RequestIdWithControlCharactersIsRefused) {
  for (const std::string id :
       {std::string("a\nINFO forged line"), std::string("\x1b[31mred"),
        std::string("tab\there"), std::string("c1 \xc2\x9b" "31m"),
        std::string("nul\0", 4)}) {
    v1::GenerateRequest req;
    req.set_max_tokens(4);
    req.set_request_id(id);
    v1::GenerateResponse resp;
    grpc::Status s = Generate(req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("request_id has a control"));
  }
  v1::GenerateRequest ok;
  ok.set_max_tokens(2);
  ok.set_request_id("user-42 \xc3\xa9t\xc3\xa9");  // Printable UTF-8 is fine.
  v1::GenerateResponse resp;
  ASSERT_TRUE(Generate(ok, &resp).ok());
  EXPECT_EQ(resp.summary().request_id(), ok.request_id());
}

}  // namespace
}  // namespace joule
