// The OpenAI-compatible HTTP API end to end, with the server in-process on
// ephemeral ports: SSE framing, error bodies and status codes for each
// class of bad input, cancellation on disconnect, the concurrency cap,
// draining, TLS and API keys, and the api="http" metrics.
#include <atomic>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "device/cpu/reference_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/server.h"
#include "tests/fake_device.h"
#include "tests/raw_http.h"
#include "tests/subprocess.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

using ::nlohmann::json;
using ::testing::HasSubstr;

constexpr char kKey[] = "http-test-key-42";
constexpr char kModel[] = "stories260K.bin";

struct Options {
  int max_generations = 8;
  size_t max_body_bytes = 1 << 20;
  bool tls = false;
  std::string certs;
  absl::Duration read_timeout = absl::Seconds(10);
  std::optional<server::ChatTemplate> chat_template;
};

class HttpApiTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  void Start(const Options& opt = {}) {
    server::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.metrics_port = 0;
    o.metrics.host = "127.0.0.1";
    o.checkpoint_path = testing::SharedModel(kModel);
    o.tokenizer_path = testing::SharedModel("tok512.bin");
    o.devices = {"slow"};
    o.energy.cpu_energy = "model";
    o.http.host = "127.0.0.1";
    o.http.port = 0;
    o.http.threads = opt.max_generations + 4;
    o.http.max_generations = opt.max_generations;
    o.http.max_body_bytes = opt.max_body_bytes;
    o.http.read_timeout = opt.read_timeout;
    if (opt.chat_template.has_value()) o.chat_template = *opt.chat_template;
    auto keys = server::ApiKeys::FromList({kKey});
    ASSERT_TRUE(keys.ok());
    o.api_keys = *keys;
    if (opt.tls) {
      auto tls = server::LoadTls({opt.certs + "/server.pem",
                                  opt.certs + "/server.key", ""});
      ASSERT_TRUE(tls.ok()) << tls.status();
      o.tls = *tls;
    }
    o.device_factory = [this](absl::string_view name)
        -> absl::StatusOr<std::unique_ptr<device::Device>> {
      auto ref = std::make_unique<device::ReferenceEngine>(
          device::ReferenceEngine::Options{std::string(name)});
      auto fake = std::make_unique<testing::FakeDevice>(std::move(ref),
                                                        std::string(name));
      slow_ = fake.get();
      return fake;
    };
    auto s = server::JouleServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    ASSERT_GT(server_->http_port(), 0);
  }

  std::unique_ptr<httplib::Client> Client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1",
                                               server_->http_port());
    c->set_read_timeout(30, 0);
    c->set_bearer_token_auth(kKey);
    return c;
  }

  httplib::Result Post(const std::string& path, const std::string& body) {
    return Client()->Post(path, body, "application/json");
  }

  // The body's error object, after checking the status and shape.
  json Error(const httplib::Result& r, int status) {
    EXPECT_TRUE(r) << "no response";
    if (!r) return json();
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    const json j = json::parse(r->body, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("error")) << r->body;
    if (!j.is_object() || !j.contains("error")) return json();
    const json& e = j["error"];
    EXPECT_TRUE(e["message"].is_string());
    EXPECT_TRUE(e["type"].is_string());
    EXPECT_TRUE(e.contains("param"));
    EXPECT_TRUE(e.contains("code"));
    return e;
  }

  std::string Metrics() {
    return testing::Scrape(server_->metrics_port(), absl::Seconds(5))
        .value_or("");
  }

  // joule_running_sequences for the one device, or -1.
  int RunningSequences() {
    std::smatch m;
    const std::string text = Metrics();
    static const std::regex re(
        "joule_running_sequences\\{device=\"slow\"\\} ([0-9]+)");
    return std::regex_search(text, m, re) ? std::stoi(m[1]) : -1;
  }

  static std::string Completion(absl::string_view extra) {
    return absl::StrCat(R"({"model": "stories260K.bin", "prompt": "Once")",
                        extra.empty() ? "" : ", ", extra, "}");
  }

  std::unique_ptr<server::JouleServer> server_;
  testing::FakeDevice* slow_ = nullptr;
};

// The data lines of an SSE body, checking its framing on the way.
std::vector<std::string> Events(const std::string& body) {
  std::vector<std::string> out;
  for (absl::string_view block : absl::StrSplit(body, "\n\n")) {
    if (block.empty()) continue;
    if (absl::StartsWith(block, ":")) continue;  // A keep-alive comment.
    EXPECT_TRUE(absl::StartsWith(block, "data: ")) << block;
    EXPECT_EQ(block.find('\n'), absl::string_view::npos) << block;
    out.emplace_back(block.substr(6));
  }
  EXPECT_TRUE(absl::EndsWith(body, "\n\n"));
  return out;
}

TEST_F(HttpApiTest, StreamIsServerSentEventsEndingInDone) {
  Start();
  auto r = Post("/v1/completions",
                Completion(R"("max_tokens": 6, "temperature": 0,
                              "ignore_eos": true, "stream": true,
                              "stream_options": {"include_usage": true})"));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  const std::vector<std::string> events = Events(r->body);
  ASSERT_EQ(events.size(), 6u + 1 + 1 + 1);  // Tokens, finish, usage, DONE.
  EXPECT_EQ(events.back(), "[DONE]");
  std::string id;
  for (size_t i = 0; i < 6; ++i) {
    const json c = json::parse(events[i]);
    if (i == 0) id = c["id"];
    EXPECT_EQ(c["id"], id);
    EXPECT_EQ(c["object"], "text_completion");
    EXPECT_EQ(c["model"], kModel);
    EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
    EXPECT_TRUE(c["usage"].is_null());
    EXPECT_EQ(c["joule"]["energy_source"], "modeled");
    EXPECT_GT(c["joule"]["energy_joules"].get<double>(), 0);
    EXPECT_EQ(c["joule"]["device"], "slow");
  }
  const json finish = json::parse(events[6]);
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(finish["joule"]["device"], "slow");
  EXPECT_EQ(finish["joule"]["server_instance"], server_->instance_name());
  EXPECT_THAT(server_->instance_name(),
              HasSubstr(absl::StrCat(":", server_->port())));
  const json usage = json::parse(events[7]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 6);
  EXPECT_EQ(usage["usage"]["total_tokens"],
            usage["usage"]["prompt_tokens"].get<int>() + 6);
}

TEST_F(HttpApiTest, EveryClassOfBadInputGetsItsStatusAndNamesTheParameter) {
  Start({.max_generations = 8, .max_body_bytes = 4096});
  struct Case {
    std::string path, body;
    int status;
    std::optional<std::string> param;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"/v1/completions", "{\"model\": ", 400, std::nullopt, "not valid JSON"},
      {"/v1/completions", "[1, 2]", 400, std::nullopt, "JSON object"},
      {"/v1/completions", Completion(R"("max_tokens": "ten")"), 400,
       "max_tokens", "must be an integer"},
      {"/v1/completions", Completion(R"("max_tokens": 0)"), 400, "max_tokens",
       "1.."},
      {"/v1/completions", Completion(R"("temperature": -1)"), 400,
       "temperature", "temperature"},
      {"/v1/completions", Completion(R"("temperature": "hot")"), 400,
       "temperature", "must be a number"},
      {"/v1/completions", Completion(R"("top_p": 2)"), 400, "top_p", "top_p"},
      {"/v1/completions", Completion(R"("stream": "yes")"), 400, "stream",
       "true or false"},
      {"/v1/completions", Completion(R"("stop": [1])"), 400, "stop[0]",
       "a string"},
      {"/v1/completions", Completion(R"("stop": [""])"), 400, "stop",
       "empty"},
      {"/v1/completions", Completion(R"("n": 100)"), 400, "n", "1..16"},
      {"/v1/completions", Completion(R"("logprobs": 21)"), 400, "logprobs",
       "0..20"},
      {"/v1/completions", Completion(R"("echo": true, "logprobs": 1)"), 400,
       "echo", "echo"},
      {"/v1/completions", Completion(R"("stream_options": {}")"), 400,
       std::nullopt, "JSON"},
      {"/v1/completions", Completion(R"("stream_options": {})"), 400,
       "stream_options", "only allowed when stream is true"},
      {"/v1/completions", Completion(R"("tools": [{"type": "function"}])"),
       400, "tools", "not supported"},
      {"/v1/completions", Completion(R"("logit_bias": {"1": 5})"), 400,
       "logit_bias", "not supported"},
      {"/v1/completions", Completion(R"("presence_penalty": 0.5)"), 400,
       "presence_penalty", "not supported"},
      {"/v1/completions", Completion(R"("device": "gpu")"), 400, "device",
       "unknown device"},
      {"/v1/completions", R"({"model": "stories260K.bin"})", 400, "prompt",
       "required"},
      {"/v1/completions", R"({"prompt": "x"})", 400, "model", "required"},
      {"/v1/completions", Completion(R"("prompt": [[1, 2]])"), 400,
       "prompt[0]", "a string"},
      {"/v1/completions", Completion(std::string("\"prompt\": \"") +
                                     std::string(3000, 'a') + "\""),
       400, "prompt", "context"},
      {"/v1/completions", Completion(std::string("\"user\": \"") +
                                     std::string(5000, 'u') + "\""),
       413, std::nullopt, "larger than 4096 bytes"},
      {"/v1/completions", Completion(R"("user": "a\u001b[2Jb")"), 400, "user",
       "control character"},
      {"/v1/completions", R"({"model": "gpt-4", "prompt": "x"})", 404,
       "model", "not served here"},
      {"/v1/chat/completions",
       R"({"model": "stories260K.bin", "messages": []})", 400, "messages",
       "non-empty"},
      {"/v1/chat/completions",
       R"({"model": "stories260K.bin", "messages": [{"role": "tool", "content": "x"}]})",
       400, "messages[0].role", "not supported"},
      {"/v1/chat/completions",
       R"({"model": "stories260K.bin", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
       400, "messages[0].content[0]", "text"},
      {"/v1/chat/completions",
       R"({"model": "stories260K.bin", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})",
       400, "top_logprobs", "logprobs: true"},
      {"/v1/chat/completions",
       R"({"model": "stories260K.bin", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}})",
       400, "response_format", "not supported"},
      {"/v1/nothing", "{}", 404, std::nullopt, "no endpoint"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body.substr(0, 200));
    const json e = Error(Post(c.path, c.body), c.status);
    if (e.is_null()) continue;
    if (c.param.has_value()) {
      EXPECT_EQ(e["param"], *c.param);
    } else {
      EXPECT_TRUE(e["param"].is_null()) << e;
    }
    EXPECT_THAT(e["message"].get<std::string>(), HasSubstr(c.message));
    if (c.status == 404 && c.param.has_value()) {
      EXPECT_EQ(e["code"], "model_not_found");
    }
  }
  // Unknown fields are ignored, as the SDKs expect.
  auto ok = Post("/v1/completions",
                 Completion(R"("max_tokens": 2, "frobnicate": {"a": [1]},
                               "presence_penalty": 0, "logit_bias": {})"));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
}

TEST_F(HttpApiTest, ApiKeysGuardGenerationButNotHealthOrModels) {
  Start();
  httplib::Client anonymous("127.0.0.1", server_->http_port());
  const json missing =
      Error(anonymous.Post("/v1/completions", Completion(""),
                           "application/json"),
            401);
  EXPECT_EQ(missing["type"], "authentication_error");
  httplib::Client wrong("127.0.0.1", server_->http_port());
  wrong.set_bearer_token_auth("not-the-key");
  auto r = wrong.Post("/v1/chat/completions", "{}", "application/json");
  Error(r, 401);
  EXPECT_THAT(r->body, ::testing::Not(HasSubstr("not-the-key")));
  EXPECT_EQ(anonymous.Get("/health")->status, 200);
  EXPECT_EQ(anonymous.Get("/v1/models")->status, 200);
  EXPECT_THAT(Metrics(),
              HasSubstr("joule_refused_calls_total{api=\"http\",reason="
                        "\"unauthenticated\"} 2"));
}

TEST_F(HttpApiTest, DisconnectMidStreamCancelsAndFreesTheSequence) {
  Start();
  slow_->set_step_delay(absl::Milliseconds(20));
  // 400 tokens at 20 ms a step would run 8 s.
  const std::string body = Completion(
      R"("max_tokens": 400, "ignore_eos": true, "stream": true)");
  const absl::Time start = absl::Now();
  testing::RawSocket socket(server_->http_port());
  ASSERT_TRUE(socket.connected());
  socket.Send(absl::StrCat(
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ",
      kKey, "\r\nContent-Type: application/json\r\nContent-Length: ",
      body.size(), "\r\n\r\n", body));
  const std::string head = socket.ReadUntil(
      [](const std::string& got) {
        size_t events = 0;
        for (size_t at = got.find("data: "); at != std::string::npos;
             at = got.find("data: ", at + 1)) {
          ++events;
        }
        return events >= 3;
      },
      absl::Seconds(10));
  EXPECT_THAT(head, HasSubstr("200 OK"));
  const bool saw_running = RunningSequences() == 1;
  socket.Close();  // Hang up mid-stream.
  EXPECT_TRUE(saw_running);
  // The sequence is freed long before its 8 s would have run out.
  bool freed = false;
  while (!freed && absl::Now() - start < absl::Seconds(4)) {
    freed = RunningSequences() == 0 && slow_->kv_used_tokens() == 0;
    if (!freed) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(freed);
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  EXPECT_THAT(Metrics(),
              HasSubstr("joule_requests_total{api=\"http\",code=\"499\"} 1"));
}

TEST_F(HttpApiTest, BeyondTheCapIs429AndTheCapFreesAgain) {
  Start({.max_generations = 1});
  slow_->set_step_delay(absl::Milliseconds(10));
  std::thread first([this] {
    auto r = Post("/v1/completions",
                  Completion(R"("max_tokens": 60, "ignore_eos": true)"));
    EXPECT_TRUE(r && r->status == 200);
  });
  // Wait until the first holds the slot.
  for (int i = 0; i < 300 && RunningSequences() != 1; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  auto refused = Post("/v1/completions", Completion(R"("max_tokens": 1)"));
  const json e = Error(refused, 429);
  EXPECT_EQ(e["type"], "rate_limit_error");
  EXPECT_THAT(e["message"].get<std::string>(),
              HasSubstr("--http_max_concurrent_generations"));
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  first.join();
  auto again = Post("/v1/completions", Completion(R"("max_tokens": 1)"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

TEST_F(HttpApiTest, DrainingAnswers503ButFinishesRunningStreams) {
  Start();
  slow_->set_step_delay(absl::Milliseconds(10));
  httplib::Client health("127.0.0.1", server_->http_port());
  EXPECT_EQ(health.Get("/health")->status, 200);
  std::string body;
  std::thread stream([&] {
    auto r = Post("/v1/completions",
                  Completion(R"("max_tokens": 80, "ignore_eos": true,
                                "stream": true)"));
    if (r) body = r->body;
  });
  for (int i = 0; i < 300 && RunningSequences() != 1; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  std::thread drain([this] { server_->Shutdown(absl::Seconds(20)); });
  int status = 0;
  for (int i = 0; i < 200 && status != 503; ++i) {
    auto r = health.Get("/health");
    status = r ? r->status : 0;
    if (status != 503) absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(status, 503);
  stream.join();
  drain.join();
  server_.reset();
  const std::vector<std::string> events = Events(body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  const json finish = json::parse(events[events.size() - 2]);
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "length");
}

TEST_F(HttpApiTest, RequestsAppearInTheMetricsWithTheirApi) {
  Start();
  ASSERT_EQ(Post("/v1/completions", Completion(R"("max_tokens": 2)"))->status,
            200);
  Error(Post("/v1/completions", Completion(R"("top_k": "x")")), 400);
  const std::string m = Metrics();
  EXPECT_THAT(m, HasSubstr("joule_requests_total{api=\"http\",code=\"200\"} 1"));
  EXPECT_THAT(m, HasSubstr("joule_requests_total{api=\"http\",code=\"400\"} 1"));
  EXPECT_THAT(m, HasSubstr("joule_time_to_first_token_seconds_count{api="
                           "\"http\",device=\"slow\"} 1"));
}

// cpp-httplib 0.11 alone buffered a header line of any length (1 GiB sent,
// 1 GiB of RSS) and restarted its timeout at every byte.
TEST_F(HttpApiTest, AnEndlessHeaderOrATricklingClientIsCutOff) {
  Start({.read_timeout = absl::Seconds(1)});
  {
    testing::RawSocket socket(server_->http_port());
    ASSERT_TRUE(socket.connected());
    socket.Send("GET /health HTTP/1.1\r\nX-Big: ");
    const std::string chunk(1 << 16, 'a');
    bool cut = false;
    for (int i = 0; i < 256 && !cut; ++i) {  // Up to 16 MiB.
      cut = ::send(socket.fd(), chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0;
    }
    EXPECT_TRUE(cut) << "16 MiB of one header line were accepted";
  }
  {
    testing::RawSocket socket(server_->http_port());
    const absl::Time start = absl::Now();
    socket.Send("GET /health HTTP/1.1\r\n");
    bool cut = false;
    while (!cut && absl::Now() - start < absl::Seconds(10)) {
      absl::SleepFor(absl::Milliseconds(200));
      cut = ::send(socket.fd(), "X", 1, MSG_NOSIGNAL) < 0;
    }
    EXPECT_TRUE(cut);
    EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  }
  // The port still serves.
  httplib::Client c("127.0.0.1", server_->http_port());
  auto r = c.Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// --chat_template: chat messages become the prompt the template renders,
// which a completion of that prompt reproduces token for token.
TEST_F(HttpApiTest, ChatUsesTheConfiguredTemplate) {
  auto t = server::ChatTemplate::Parse(
      R"({"system": "S{content}", "user": "<u>{content}</u>",
          "assistant": "A{content}", "generation_prompt": " and then"})");
  ASSERT_TRUE(t.ok()) << t.status();
  Start({.chat_template = *t});
  auto chat = Post("/v1/chat/completions",
                   R"({"model": "stories260K.bin", "max_tokens": 12,
                       "temperature": 0, "ignore_eos": true,
                       "messages": [{"role": "user", "content": "Once"}]})");
  auto completion = Post("/v1/completions",
                         R"({"model": "stories260K.bin", "max_tokens": 12,
                             "temperature": 0, "ignore_eos": true,
                             "prompt": "<u>Once</u> and then"})");
  ASSERT_TRUE(chat && completion);
  ASSERT_EQ(chat->status, 200) << chat->body;
  ASSERT_EQ(completion->status, 200) << completion->body;
  const json c = json::parse(chat->body);
  const json p = json::parse(completion->body);
  EXPECT_EQ(c["choices"][0]["message"]["content"], p["choices"][0]["text"]);
  EXPECT_EQ(c["usage"]["prompt_tokens"], p["usage"]["prompt_tokens"]);
}

TEST_F(HttpApiTest, ServesTlsWithTheGrpcPortsCertificate) {
  const std::string certs = testing::TempDir() + "/http_certs";
  testing::RunResult made = testing::Run(
      {"/bin/bash", testing::Runfile("tests/testdata/make_test_certs.sh"),
       certs},
      testing::TempDir());
  ASSERT_EQ(made.code, 0) << made.err;
  Start({.tls = true, .certs = certs});
  httplib::SSLClient tls("127.0.0.1", server_->http_port());
  tls.set_ca_cert_path((certs + "/ca.pem").c_str());
  tls.enable_server_certificate_verification(true);
  tls.set_bearer_token_auth(kKey);
  auto r = tls.Post("/v1/completions", Completion(R"("max_tokens": 2)"),
                    "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200) << r->body;
  // Plaintext HTTP to the TLS port gets no answer.
  httplib::Client plain("127.0.0.1", server_->http_port());
  plain.set_read_timeout(2, 0);
  auto p = plain.Get("/health");
  EXPECT_TRUE(!p || p->status != 200);
}

}  // namespace
}  // namespace joule
