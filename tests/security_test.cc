// "Safe to expose": API keys, TLS and mutual TLS, and the resource limits
// (write timeout, concurrent streams, idle connections, the metrics
// endpoint under slow clients), with the server in-process on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "device/cpu/reference_engine.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/joule.grpc.pb.h"
#include "proto/reflection.grpc.pb.h"
#include "server/server.h"
#include "server/transport_security.h"
#include "tests/fake_device.h"
#include "proto/health.grpc.pb.h"
#include "tests/raw_http.h"
#include "tests/subprocess.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::RawSocket;
using testing::Scrape;
namespace rpb = grpc::reflection::v1alpha;

constexpr char kKey[] = "test-key-0123456789";

class SecurityTest : public ::testing::Test {
 protected:
  // One throwaway PKI for the suite (tests/testdata/make_test_certs.sh).
  static void SetUpTestSuite() {
    certs_ = new std::string(testing::TempDir() + "/certs");
    const std::string script =
        testing::Runfile("tests/testdata/make_test_certs.sh");
    testing::RunResult r =
        testing::Run({"/bin/bash", script, *certs_}, testing::TempDir());
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete certs_; }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  static std::string Cert(const std::string& name) {
    return *certs_ + "/" + name;
  }
  static std::string Slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // The server of server_test: the reference engine as "cpu", and "slow"
  // taking 5 ms a step.
  server::ServerOptions Options() {
    server::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.checkpoint_path = testing::SharedModel("stories260K.bin");
    o.tokenizer_path = testing::SharedModel("tok512.bin");
    o.devices = {"cpu", "slow"};
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
    return o;
  }
  void Start(const server::ServerOptions& o) {
    auto s = server::JouleServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }
  void StartWithKey() {
    server::ServerOptions o = Options();
    o.api_keys = *server::ApiKeys::FromList({kKey, "another-key"});
    Start(o);
  }
  // TLS, and mutual TLS when `client_ca`.
  void StartWithTls(bool client_ca) {
    server::ServerOptions o = Options();
    auto tls = server::LoadTls({Cert("server.pem"), Cert("server.key"),
                                client_ca ? Cert("ca.pem") : ""});
    ASSERT_TRUE(tls.ok()) << tls.status();
    o.tls = *tls;
    Start(o);
  }

  std::string Target() const {
    return "127.0.0.1:" + std::to_string(server_->port());
  }
  std::shared_ptr<grpc::Channel> Plaintext(
      const grpc::ChannelArguments& args = {}) const {
    return grpc::CreateCustomChannel(Target(),
                                     grpc::InsecureChannelCredentials(), args);
  }
  // A TLS channel trusting the test CA, with a client certificate `client`
  // ("client", "other_client") or none.
  std::shared_ptr<grpc::Channel> Tls(const std::string& client = "") const {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Slurp(Cert("ca.pem"));
    if (!client.empty()) {
      ssl.pem_cert_chain = Slurp(Cert(client + ".pem"));
      ssl.pem_private_key = Slurp(Cert(client + ".key"));
    }
    return grpc::CreateChannel(Target(), grpc::SslCredentials(ssl));
  }

  static void SetKey(grpc::ClientContext* ctx, const std::string& key) {
    ctx->AddMetadata("authorization", "Bearer " + key);
  }
  static void SetDeadline(grpc::ClientContext* ctx, absl::Duration d) {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + d));
  }
  // ListDevices with `key` ("": none).
  static grpc::Status ListDevices(std::shared_ptr<grpc::Channel> channel,
                                  const std::string& key = "") {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(10));
    if (!key.empty()) SetKey(&ctx, key);
    v1::ListDevicesResponse resp;
    return v1::Joule::NewStub(channel)->ListDevices(&ctx, {}, &resp);
  }
  // A whole GenerateStream of `tokens` greedy tokens.
  static grpc::Status Generate(std::shared_ptr<grpc::Channel> channel,
                               const std::string& key, int tokens,
                               const std::string& device = "") {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(30));
    if (!key.empty()) SetKey(&ctx, key);
    v1::GenerateRequest req;
    req.set_temperature(0);
    req.set_max_tokens(tokens);
    req.set_device(device);
    auto reader = v1::Joule::NewStub(channel)->GenerateStream(&ctx, req);
    v1::GenerateStreamResponse msg;
    int got = 0;
    while (reader->Read(&msg)) got += msg.has_token();
    grpc::Status s = reader->Finish();
    if (s.ok() && got != tokens)
      return grpc::Status(grpc::StatusCode::UNKNOWN, "short");
    return s;
  }

  static std::string* certs_;
  std::unique_ptr<server::JouleServer> server_;
  testing::FakeDevice* slow_ = nullptr;
};

std::string* SecurityTest::certs_ = nullptr;

TEST_F(SecurityTest, CallsWithoutTheRightKeyAreUnauthenticated) {
  StartWithKey();
  grpc::Status none = ListDevices(Plaintext());
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(none.error_message(), HasSubstr("missing API key"));
  grpc::Status wrong = ListDevices(Plaintext(), "not-the-key");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(wrong.error_message(), HasSubstr("invalid API key"));
  EXPECT_THAT(wrong.error_message(), Not(HasSubstr("not-the-key")));
  grpc::Status gen = Generate(Plaintext(), "", 4);
  EXPECT_EQ(gen.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(SecurityTest, EveryConfiguredKeyWorks) {
  StartWithKey();
  EXPECT_TRUE(ListDevices(Plaintext(), kKey).ok());
  EXPECT_TRUE(ListDevices(Plaintext(), "another-key").ok());
  grpc::Status gen = Generate(Plaintext(), kKey, 8);
  EXPECT_TRUE(gen.ok()) << gen.error_message();
}

TEST_F(SecurityTest, HealthNeedsNoKey) {
  StartWithKey();
  auto stub = grpc::health::v1::Health::NewStub(Plaintext());
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(10));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service("joule.v1.Joule");
  grpc::health::v1::HealthCheckResponse resp;
  ASSERT_TRUE(stub->Check(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

// One list_services and one file_containing_symbol on a reflection stream.
grpc::Status Reflect(std::shared_ptr<grpc::Channel> channel,
                     const std::string& key, std::vector<std::string>* names,
                     std::string* joule_file) {
  auto stub = rpb::ServerReflection::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  if (!key.empty()) ctx.AddMetadata("authorization", "Bearer " + key);
  auto stream = stub->ServerReflectionInfo(&ctx);
  rpb::ServerReflectionRequest req;
  rpb::ServerReflectionResponse resp;
  req.set_list_services("");
  if (stream->Write(req) && stream->Read(&resp)) {
    for (const auto& s : resp.list_services_response().service()) {
      names->push_back(s.name());
    }
    req.set_file_containing_symbol("joule.v1.Joule.GenerateStream");
    if (stream->Write(req) && stream->Read(&resp) &&
        resp.file_descriptor_response().file_descriptor_proto_size() > 0) {
      google::protobuf::FileDescriptorProto file;
      file.ParseFromString(
          resp.file_descriptor_response().file_descriptor_proto(0));
      *joule_file = file.name();
    }
  }
  stream->WritesDone();
  return stream->Finish();
}

TEST_F(SecurityTest, ReflectionNeedsTheKeyWhenKeysAreSet) {
  StartWithKey();
  std::vector<std::string> names;
  std::string file;
  grpc::Status denied = Reflect(Plaintext(), "", &names, &file);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(names.empty());
  EXPECT_EQ(file, "");

  grpc::Status ok = Reflect(Plaintext(), kKey, &names, &file);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_THAT(names, Contains("joule.v1.Joule"));
  EXPECT_THAT(names, Contains("grpc.health.v1.Health"));
  EXPECT_THAT(names, Contains("grpc.reflection.v1alpha.ServerReflection"));
  EXPECT_EQ(file, "proto/joule.proto");
}

TEST_F(SecurityTest, TlsClientWorksAndPlaintextIsRefused) {
  StartWithTls(/*client_ca=*/false);
  grpc::Status tls = ListDevices(Tls());
  EXPECT_TRUE(tls.ok()) << tls.error_message();
  EXPECT_TRUE(Generate(Tls(), "", 8).ok());
  EXPECT_EQ(ListDevices(Plaintext()).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SecurityTest, MutualTlsNeedsAClientCertificateFromTheCa) {
  StartWithTls(/*client_ca=*/true);
  grpc::Status with_cert = ListDevices(Tls("client"));
  EXPECT_TRUE(with_cert.ok()) << with_cert.error_message();
  EXPECT_EQ(ListDevices(Tls()).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ListDevices(Tls("other_client")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ListDevices(Plaintext()).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

// The metric's value in a Prometheus text scrape, or -1.
double MetricValue(const std::string& scrape, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(scrape, '\n')) {
    if (absl::StartsWith(line, name + " ") ||
        absl::StartsWith(line, name + "{")) {
      return std::stod(std::string(line.substr(line.rfind(' ') + 1)));
    }
  }
  return -1;
}

TEST_F(SecurityTest, StreamWhoseClientStopsReadingIsCancelled) {
  server::ServerOptions o = Options();
  o.stream_write_timeout = absl::Milliseconds(300);
  o.metrics_port = 0;
  Start(o);
  // A client that never reads: small HTTP/2 windows, so the server's
  // writes block after a few hundred bytes instead of filling megabytes.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto channel = Plaintext(args);
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(60));
  v1::GenerateRequest req;
  req.set_max_tokens(400);  // 400 steps of 5 ms: 2 s or more of generation.
  req.set_ignore_eos(true);
  req.set_device("slow");
  req.set_pin_device(true);
  const absl::Time start = absl::Now();
  auto reader = v1::Joule::NewStub(channel)->GenerateStream(&ctx, req);

  // The sequence is freed long before its 400 tokens would be done.
  absl::Time freed = absl::InfiniteFuture();
  absl::SleepFor(absl::Milliseconds(100));
  for (int i = 0; i < 300; ++i) {
    if (slow_->kv_used_tokens() == 0) {
      freed = absl::Now();
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_NE(freed, absl::InfiniteFuture()) << "the sequence was never freed";
  EXPECT_LT(slow_->steps(), 380) << "generation ran to the end";
  const absl::Duration took = freed - start;
  std::fprintf(stderr, "stream cancelled and freed %.0f ms after it began\n",
               absl::ToDoubleMilliseconds(took));
  EXPECT_GE(took, absl::Milliseconds(300));
  EXPECT_LT(took, absl::Seconds(2));
  ctx.TryCancel();
  reader->Finish();

  std::optional<std::string> scrape =
      Scrape(server_->metrics_port(), absl::Seconds(5));
  ASSERT_TRUE(scrape.has_value());
  EXPECT_EQ(MetricValue(*scrape, "joule_stream_write_timeouts_total"), 1);
  // The server stays healthy: the next stream runs to the end.
  EXPECT_TRUE(Generate(Plaintext(), "", 16, "slow").ok());
  EXPECT_TRUE(Generate(Plaintext(), "", 16).ok());
}

TEST_F(SecurityTest, StreamsBeyondTheLimitAreResourceExhausted) {
  server::ServerOptions o = Options();
  o.max_concurrent_streams = 1;
  Start(o);
  // Holds the only slot: 200 tokens on the slow device (~1 s).
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(30));
  v1::GenerateRequest req;
  req.set_max_tokens(200);
  req.set_ignore_eos(true);
  req.set_device("slow");
  auto reader = v1::Joule::NewStub(Plaintext())->GenerateStream(&ctx, req);
  v1::GenerateStreamResponse msg;
  ASSERT_TRUE(reader->Read(&msg));  // Its handler is running.

  grpc::Status second = Generate(Plaintext(), "", 4);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(second.error_message(), HasSubstr("--max_concurrent_streams"));
  EXPECT_TRUE(ListDevices(Plaintext()).ok());  // Only generation counts.

  while (reader->Read(&msg)) {
  }
  EXPECT_TRUE(reader->Finish().ok());
  // The slot is free again.
  EXPECT_TRUE(Generate(Plaintext(), "", 4).ok());
}

TEST_F(SecurityTest, IdleConnectionIsClosed) {
  server::ServerOptions o = Options();
  o.connection.max_connection_idle = absl::Milliseconds(300);
  Start(o);
  auto channel = Plaintext();
  ASSERT_TRUE(ListDevices(channel).ok());
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  const absl::Time idle_since = absl::Now();
  // The server's GOAWAY takes the channel out of READY.
  const bool changed = channel->WaitForStateChange(
      GRPC_CHANNEL_READY, absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  ASSERT_TRUE(changed) << "still connected after 5 s idle";
  const absl::Duration after = absl::Now() - idle_since;
  std::fprintf(stderr, "idle connection closed after %.0f ms (state %d)\n",
               absl::ToDoubleMilliseconds(after), channel->GetState(false));
  EXPECT_GE(after, absl::Milliseconds(250));
  EXPECT_NE(channel->GetState(false), GRPC_CHANNEL_READY);
  // A closed idle connection costs the client only a reconnect.
  EXPECT_TRUE(ListDevices(channel).ok());
}

// A busy connection is never idle; max_connection_age still moves it on.
TEST_F(SecurityTest, ConnectionOlderThanMaxAgeIsToldToGoAway) {
  server::ServerOptions o = Options();
  o.connection.max_connection_idle = absl::ZeroDuration();
  o.connection.max_connection_age = absl::Milliseconds(300);
  o.connection.max_connection_age_grace = absl::Milliseconds(100);
  Start(o);
  auto channel = Plaintext();
  ASSERT_TRUE(ListDevices(channel).ok());
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  const absl::Time start = absl::Now();
  bool changed = false;
  // Calls keep coming, so only the connection's age can end it.
  while (!changed && absl::Now() - start < absl::Seconds(5)) {
    EXPECT_TRUE(ListDevices(channel).ok());
    changed = channel->WaitForStateChange(
        GRPC_CHANNEL_READY,
        absl::ToChronoTime(absl::Now() + absl::Milliseconds(50)));
  }
  ASSERT_TRUE(changed) << "connection still READY after 5 s of calls";
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
  EXPECT_TRUE(ListDevices(channel).ok());  // A reconnect, nothing lost.
}

TEST_F(SecurityTest, SlowMetricsRequestsDoNotBlockAScrape) {
  server::ServerOptions o = Options();
  o.metrics_port = 0;
  o.metrics.request_timeout = absl::Seconds(1);
  Start(o);
  const int port = server_->metrics_port();
  // Two clients that start a request and never finish it.
  RawSocket slow1(port), slow2(port);
  ASSERT_TRUE(slow1.connected() && slow2.connected());
  slow1.Send("GET /metrics HTTP/1.1\r\nHost: x\r\n");
  slow2.Send("GET /metr");
  absl::SleepFor(absl::Milliseconds(100));
  const absl::Time start = absl::Now();
  std::optional<std::string> scrape = Scrape(port, absl::Seconds(5));
  ASSERT_TRUE(scrape.has_value()) << "the scrape waited behind slow clients";
  EXPECT_THAT(*scrape, HasSubstr("200 OK"));
  EXPECT_THAT(*scrape, HasSubstr("joule_queue_depth"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  // And the slow ones are dropped after the request timeout.
  EXPECT_TRUE(slow1.ReadToClose(absl::Seconds(5)).has_value());
  EXPECT_TRUE(slow2.ReadToClose(absl::Seconds(5)).has_value());
}

}  // namespace
}  // namespace joule
