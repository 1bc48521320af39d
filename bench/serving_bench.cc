// Serving over the real gRPC and HTTP paths: throughput, time to first
// token and inter-token latency percentiles at 1, 4, 16 and 64 concurrent
// streams on a stories15M-shaped synthetic checkpoint, the scheduler's own
// time per step as a share of the step, and (on the CPU engine) the same
// requests run on the engine directly, so the serving overhead is one
// number. --api=http streams the same requests from the OpenAI-compatible
// /v1/completions as server-sent events; --api=both alternates the two.
//   bazel run -c opt //bench:serving_bench [-- --devices=cpu --tokens=32]
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_models.h"
#include "clients/load_report.h"
#include "device/cpu/fast_engine.h"
#include "grpcpp/grpcpp.h"
#include "httplib.h"
#include "model/sampler.h"
#include "model/tokenizer.h"
#include "nlohmann/json.hpp"
#include "proto/joule.grpc.pb.h"
#include "proto/status_names.h"
#include "server/server.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, devices, "cpu", "Devices to serve on.");
ABSL_FLAG(std::string, shape, "stories15M", "Synthetic model shape.");
ABSL_FLAG(int, version, 0, "Checkpoint version (0 fp32, 2 int8).");
ABSL_FLAG(int, tokens, 32, "Tokens generated per request.");
ABSL_FLAG(std::string, concurrency, "1,4,16,64", "Stream counts to run.");
ABSL_FLAG(int, tokens_per_level, 2048,
          "Tokens to generate at each concurrency (split over requests).");
ABSL_FLAG(bool, client_process, true,
          "Run the clients in a separate process, as real clients are. "
          "In-process clients share the server's gRPC pollers, which then "
          "also do the clients' reads: more thread hand-offs per token than "
          "either side pays alone.");
ABSL_FLAG(std::string, api, "grpc",
          "grpc, http (POST /v1/completions streamed as server-sent "
          "events, one keep-alive connection per stream) or both: rounds of "
          "the two alternate, each API going first in every other round, "
          "so a machine whose speed drifts favours neither. Other than "
          "grpc, rows are labelled and add the client process's CPU per "
          "token.");

using joule::clients::Percentile;
ABSL_FLAG(int, rounds, 5,
          "With the engine baseline or --api=both: rounds per API and "
          "concurrency, each between two engine rounds; \"vs engine\" is "
          "the median round's share.");
ABSL_FLAG(bool, engine_baseline, true,
          "With --devices=cpu: also run the same requests (prompt, length, "
          "sampling, concurrency as one batch) on a FastEngine called "
          "directly, alternating with the served rounds, and print the "
          "served share of that engine's tok/s: the serving overhead.");

namespace {

using Json = nlohmann::json;

const char kPrompt[] = "Once upon a time, in a small village by the sea, lived";

enum class Api : int32_t { kGrpc, kHttp };

const char* ApiName(Api api) { return api == Api::kGrpc ? "grpc" : "http"; }

std::vector<Api> ParseApis(const std::string& flag) {
  if (flag == "grpc") return {Api::kGrpc};
  if (flag == "http") return {Api::kHttp};
  if (flag == "both") return {Api::kGrpc, Api::kHttp};
  std::fprintf(stderr, "--api must be grpc, http or both, not %s\n",
               flag.c_str());
  std::exit(2);
}

// tok/s of the engine alone on `rounds` rounds of `streams` requests decoded
// together: one prefill step for the prompts, then one decode step per
// token for all of them, sampled as the server samples.
double EngineAlone(joule::device::FastEngine& dev,
                   const joule::model::Tokenizer& tok, int streams, int rounds,
                   int tokens) {
  const std::vector<int> prompt = tok.Encode(kPrompt, true);
  joule::device::StepOutput out;
  uint64_t next_id = 1u << 20;
  int64_t generated = 0;
  const absl::Time start = absl::Now();
  for (int r = 0; r < rounds; ++r) {
    std::vector<uint64_t> ids(streams);
    std::vector<joule::model::Sampler> samplers;
    std::vector<joule::device::SequenceChunk> chunks;
    for (int c = 0; c < streams; ++c) {
      ids[c] = next_id++;
      joule::model::SamplingParams sp;
      sp.temperature = 0.8f;
      sp.seed = c * 1000 + r;
      samplers.emplace_back(sp);
      chunks.push_back({ids[c], 0, prompt});
    }
    if (!dev.Step(chunks, &out).ok()) std::abort();
    std::vector<std::vector<int>> last(streams, std::vector<int>(1));
    for (int step = 0; step < tokens; ++step) {
      for (int c = 0; c < streams; ++c)
        last[c][0] = samplers[c].Sample(out.row(c));
      generated += streams;
      if (step + 1 == tokens) break;
      chunks.clear();
      const int pos = static_cast<int>(prompt.size()) + step;
      for (int c = 0; c < streams; ++c)
        chunks.push_back({ids[c], pos, last[c]});
      if (!dev.Step(chunks, &out).ok()) std::abort();
    }
    for (uint64_t id : ids) dev.Release(id);
  }
  return generated / absl::ToDoubleSeconds(absl::Now() - start);
}

// What the clients saw at one concurrency.
struct LevelResult {
  int64_t generated = 0;
  int64_t metered = 0;  // Tokens that carried an energy figure.
  int32_t errors = 0;
  double wall = 0;  // Seconds, first request sent to last stream closed.
  double joules = 0;
  // The client process's CPU seconds over `wall` (0 with in-process
  // clients, whose process is also the server's).
  double client_cpu = 0;
  std::string source = "none";
  std::vector<double> ttft, itl;  // Seconds.
};

void Merge(const LevelResult& from, LevelResult* into) {
  into->generated += from.generated;
  into->metered += from.metered;
  into->errors += from.errors;
  into->wall += from.wall;
  into->joules += from.joules;
  into->client_cpu += from.client_cpu;
  if (from.metered > 0) into->source = from.source;
  into->ttft.insert(into->ttft.end(), from.ttft.begin(), from.ttft.end());
  into->itl.insert(into->itl.end(), from.itl.begin(), from.itl.end());
}

double ProcessCpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
         1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// One request's tokens, timed as they reach its client.
class Arrivals {
 public:
  explicit Arrivals(LevelResult* res) : res_(res), last_(absl::Now()) {}

  void Token() {
    const absl::Time now = absl::Now();
    (tokens_++ == 0 ? res_->ttft : res_->itl)
        .push_back(absl::ToDoubleSeconds(now - last_));
    last_ = now;
    ++res_->generated;
  }

  void Energy(double joules, std::string source) {
    res_->joules += joules;
    ++res_->metered;
    res_->source = std::move(source);
  }

 private:
  LevelResult* const res_;
  absl::Time last_;  // When the request was sent, then the last token.
  int tokens_ = 0;
};

// Where the clients connect.
struct Endpoints {
  std::shared_ptr<grpc::Channel> channel;
  int http_port = -1;
  std::string model;  // The id GET /v1/models names.
};

// The served model's id, as an OpenAI client learns it.
std::string ServedModel(int http_port) {
  httplib::Client cli("127.0.0.1", http_port);
  auto r = cli.Get("/v1/models");
  const Json j =
      r && r->status == 200 ? Json::parse(r->body, nullptr, false) : Json();
  const auto data = j.find("data");
  if (data == j.end() || !data->is_array() || data->empty() ||
      !data->front().is_object() || !data->front().contains("id")) {
    std::fprintf(stderr, "GET /v1/models failed\n");
    std::exit(1);
  }
  return data->front().value("id", "");
}

Endpoints ConnectTo(int grpc_port, int http_port) {
  Endpoints ep;
  ep.channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port),
                                   grpc::InsecureChannelCredentials());
  ep.http_port = http_port;
  if (http_port > 0) ep.model = ServedModel(http_port);
  return ep;
}

// Client `c`'s request `r`: every API gets the same prompt, length and
// sampling.
joule::v1::GenerateRequest GrpcRequest(int c, int r, int tokens) {
  joule::v1::GenerateRequest req;
  req.set_prompt(kPrompt);
  req.set_max_tokens(tokens);
  req.set_ignore_eos(true);
  req.set_temperature(0.8f);
  req.set_seed(c * 1000 + r);
  return req;
}

std::string CompletionBody(const std::string& model, int c, int r, int tokens) {
  return Json{{"model", model},       {"prompt", kPrompt},
              {"max_tokens", tokens}, {"ignore_eos", true},
              {"temperature", 0.8},   {"seed", c * 1000 + r},
              {"stream", true}}
      .dump();
}

// One streamed gRPC call; false if it failed.
bool GrpcGenerate(joule::v1::Joule::Stub& stub, int c, int r, int tokens,
                  LevelResult* res) {
  grpc::ClientContext ctx;
  Arrivals arrivals(res);
  auto reader = stub.GenerateStream(&ctx, GrpcRequest(c, r, tokens));
  joule::v1::GenerateStreamResponse msg;
  while (reader->Read(&msg)) {
    if (!msg.has_token()) continue;
    arrivals.Token();
    if (msg.token().has_energy_joules()) {
      arrivals.Energy(
          msg.token().energy_joules(),
          joule::proto::EnergySourceName(msg.token().energy_source()));
    }
  }
  return reader->Finish().ok();
}

// One streamed completion, fed the response body as it arrives: each
// `data:` event that carries a token counts (the finish chunk and [DONE]
// do not); an error event fails it.
class CompletionStream {
 public:
  explicit CompletionStream(LevelResult* res) : arrivals_(res) {}

  bool Receive(const char* data, size_t n) {
    buffer_.append(data, n);
    size_t start = 0;
    for (size_t end; (end = buffer_.find("\n\n", start)) != std::string::npos;
         start = end + 2) {
      absl::string_view event(buffer_.data() + start, end - start);
      if (absl::ConsumePrefix(&event, "data: ")) OnData(event);
    }
    buffer_.erase(0, start);
    return !failed_;
  }

  bool ok() const { return done_ && !failed_; }

 private:
  void OnData(absl::string_view data) {
    if (data == "[DONE]") {
      done_ = true;
      return;
    }
    const Json j = Json::parse(data.begin(), data.end(), nullptr, false);
    const auto choices = j.find("choices");
    if (choices == j.end() || !choices->is_array() || j.contains("error")) {
      failed_ = true;
      return;
    }
    if (choices->empty() || !choices->front().is_object()) return;
    const auto finish = choices->front().find("finish_reason");
    if (finish != choices->front().end() && !finish->is_null()) return;
    arrivals_.Token();
    const auto joule = j.find("joule");
    if (joule == j.end() || !joule->is_object()) return;
    const auto joules = joule->find("energy_joules");
    if (joules != joule->end() && joules->is_number()) {
      arrivals_.Energy(joules->get<double>(),
                       joule->value("energy_source", "unknown"));
    }
  }

  Arrivals arrivals_;
  std::string buffer_;
  bool done_ = false;
  bool failed_ = false;
};

// One streamed completion on `cli`'s connection; false if it failed.
bool HttpGenerate(httplib::Client& cli, const std::string& body,
                  LevelResult* res) {
  CompletionStream stream(res);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&stream](const char* data, size_t n, uint64_t,
                                   uint64_t) {
    return stream.Receive(data, n);
  };
  httplib::Response resp;
  httplib::Error error;
  return cli.send(req, resp, error) && resp.status == 200 && stream.ok();
}

// Client `c`'s requests, one after another; gRPC multiplexes them all on
// the channel's one connection.
void GrpcClient(const Endpoints& ep, int c, int per_stream, int tokens,
                LevelResult* res) {
  auto stub = joule::v1::Joule::NewStub(ep.channel);
  for (int r = 0; r < per_stream; ++r) {
    if (!GrpcGenerate(*stub, c, r, tokens, res)) ++res->errors;
  }
}

void HttpClient(const Endpoints& ep, httplib::Client& cli, int c,
                int per_stream, int tokens, LevelResult* res) {
  for (int r = 0; r < per_stream; ++r) {
    if (!HttpGenerate(cli, CompletionBody(ep.model, c, r, tokens), res)) {
      ++res->errors;
    }
  }
}

// HTTP/1.1 takes a connection per stream. They are opened before the clock
// starts and one at a time, as a client's pool would hold them: the HTTP
// port's listen backlog is cpp-httplib's 5, and 16 connects at once
// overflow it (SYNs dropped and retried 1 s later, some connections reset).
// New ones each level: the server closes connections idle for 5 s, less
// than an engine round.
std::vector<std::unique_ptr<httplib::Client>> HttpConnections(int port, int n) {
  std::vector<std::unique_ptr<httplib::Client>> clients;
  for (int c = 0; c < n; ++c) {
    auto cli = std::make_unique<httplib::Client>("127.0.0.1", port);
    cli->set_keep_alive(true);
    // Without it the body, a second small write after the headers, waits
    // for the server's delayed ACK of the headers.
    cli->set_tcp_nodelay(true);
    cli->set_read_timeout(300, 0);  // Like the gRPC calls: no deadline.
    if (!cli->Get("/health")) {
      std::fprintf(stderr, "cannot connect to the HTTP port\n");
      std::exit(1);
    }
    clients.push_back(std::move(cli));
  }
  return clients;
}

// `streams` client threads, each sending `per_stream` requests one after
// another and reading every token as it arrives.
LevelResult RunClients(const Endpoints& ep, Api api, int streams,
                       int per_stream, int tokens) {
  std::vector<std::unique_ptr<httplib::Client>> http;
  if (api == Api::kHttp) http = HttpConnections(ep.http_port, streams);
  std::vector<LevelResult> each(streams);
  const double cpu = ProcessCpuSeconds();
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int c = 0; c < streams; ++c) {
    threads.emplace_back([&, c] {
      if (api == Api::kGrpc) {
        GrpcClient(ep, c, per_stream, tokens, &each[c]);
      } else {
        HttpClient(ep, *http[c], c, per_stream, tokens, &each[c]);
      }
    });
  }
  for (auto& t : threads) t.join();
  LevelResult res;
  res.wall = absl::ToDoubleSeconds(absl::Now() - start);
  res.client_cpu = ProcessCpuSeconds() - cpu;
  for (const LevelResult& r : each) Merge(r, &res);
  return res;
}

// Blocking pipe I/O between the bench and its client process.
bool WriteAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

bool ReadAll(int fd, void* data, size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t k = read(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

template <typename T>
bool Put(int fd, const T& v) {
  return WriteAll(fd, &v, sizeof(v));
}
template <typename T>
bool Get(int fd, T* v) {
  return ReadAll(fd, v, sizeof(*v));
}

bool PutVector(int fd, const std::vector<double>& v) {
  return Put(fd, static_cast<uint64_t>(v.size())) &&
         WriteAll(fd, v.data(), v.size() * sizeof(double));
}
bool GetVector(int fd, std::vector<double>* v) {
  uint64_t n;
  if (!Get(fd, &n)) return false;
  v->resize(n);
  return ReadAll(fd, v->data(), n * sizeof(double));
}

bool SendResult(int fd, const LevelResult& r) {
  return Put(fd, r.generated) && Put(fd, r.metered) && Put(fd, r.errors) &&
         Put(fd, r.wall) && Put(fd, r.joules) && Put(fd, r.client_cpu) &&
         Put(fd, static_cast<uint64_t>(r.source.size())) &&
         WriteAll(fd, r.source.data(), r.source.size()) &&
         PutVector(fd, r.ttft) && PutVector(fd, r.itl);
}

bool ReceiveResult(int fd, LevelResult* r) {
  uint64_t n;
  if (!(Get(fd, &r->generated) && Get(fd, &r->metered) && Get(fd, &r->errors) &&
        Get(fd, &r->wall) && Get(fd, &r->joules) && Get(fd, &r->client_cpu) &&
        Get(fd, &n))) {
    return false;
  }
  r->source.resize(n);
  return ReadAll(fd, r->source.data(), n) && GetVector(fd, &r->ttft) &&
         GetVector(fd, &r->itl);
}

// The client process: reads the server's ports, then runs one level per
// (streams, per_stream, api) command until streams is 0 or the bench is
// gone.
int ClientMain(int in, int out, int tokens) {
  int32_t grpc_port, http_port;
  if (!Get(in, &grpc_port) || !Get(in, &http_port)) return 1;
  const Endpoints ep = ConnectTo(grpc_port, http_port);
  int32_t streams, per_stream;
  Api api;
  while (Get(in, &streams) && streams > 0 && Get(in, &per_stream) &&
         Get(in, &api)) {
    if (!SendResult(out, RunClients(ep, api, streams, per_stream, tokens))) {
      return 1;
    }
  }
  return 0;
}

// Runs each level's clients, in this process or in a forked one.
class Clients {
 public:
  // Forks now, before any gRPC or engine thread exists.
  explicit Clients(bool separate_process, int tokens) : tokens_(tokens) {
    if (!separate_process) return;
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) {
      std::perror("pipe");
      std::exit(1);
    }
    pid_ = fork();
    if (pid_ < 0) {
      std::perror("fork");
      std::exit(1);
    }
    if (pid_ == 0) {
      close(to_child[1]);
      close(from_child[0]);
      _exit(ClientMain(to_child[0], from_child[1], tokens));
    }
    close(to_child[0]);
    close(from_child[1]);
    // A dead client then shows as a failed write, reported below, not as a
    // silent SIGPIPE exit.
    std::signal(SIGPIPE, SIG_IGN);
    to_ = to_child[1];
    from_ = from_child[0];
  }

  ~Clients() {
    if (pid_ <= 0) return;
    Put(to_, int32_t{0});
    close(to_);
    close(from_);
    waitpid(pid_, nullptr, 0);
  }

  // `http_port` is -1 when HTTP is off.
  void Connect(int grpc_port, int http_port) {
    if (pid_ <= 0) {
      endpoints_ = ConnectTo(grpc_port, http_port);
    } else if (!Put(to_, int32_t{grpc_port}) || !Put(to_, int32_t{http_port})) {
      std::exit(1);
    }
  }

  LevelResult Run(Api api, int streams, int per_stream) {
    if (pid_ <= 0) {
      LevelResult r = RunClients(endpoints_, api, streams, per_stream, tokens_);
      r.client_cpu = 0;  // It would count the server too.
      return r;
    }
    LevelResult r;
    if (!Put(to_, int32_t{streams}) || !Put(to_, int32_t{per_stream}) ||
        !Put(to_, api) || !ReceiveResult(from_, &r)) {
      std::fprintf(stderr, "the client process died\n");
      std::exit(1);
    }
    return r;
  }

 private:
  const int tokens_;
  pid_t pid_ = 0;
  int to_ = -1, from_ = -1;
  Endpoints endpoints_;
};

// The engine alone, on its own FastEngine on the same checkpoint (the
// server's is busy serving), idle while the clients run.
class Baseline {
 public:
  // Null unless the flags ask for one.
  static std::unique_ptr<Baseline> Make(const joule::model::Checkpoint& ckpt,
                                        const std::string& tokenizer_path) {
    if (!absl::GetFlag(FLAGS_engine_baseline) ||
        absl::GetFlag(FLAGS_devices) != "cpu") {
      return nullptr;
    }
    auto b = std::make_unique<Baseline>();
    b->engine_ = std::make_unique<joule::device::FastEngine>(
        joule::device::FastEngine::Options{});
    auto t =
        joule::model::Tokenizer::Load(tokenizer_path, ckpt.config().vocab_size);
    if (!b->engine_->LoadModel(ckpt).ok() || !t.ok()) std::exit(1);
    b->tokenizer_ = *std::move(t);
    return b;
  }

  double Round(int streams, int rounds, int tokens) {
    return EngineAlone(*engine_, *tokenizer_, streams, rounds, tokens);
  }

 private:
  std::unique_ptr<joule::device::FastEngine> engine_;
  std::unique_ptr<joule::model::Tokenizer> tokenizer_;
};

// One API's rounds at one concurrency.
struct Tally {
  LevelResult r;
  double sched = 0, dev = 0;   // The step loops' seconds.
  std::vector<double> shares;  // Each round's share of the engine's tok/s.
};

// One round of one API's clients; returns its tok/s.
double ServedRound(Api api, int streams, int per_stream, Clients& clients,
                   const joule::server::JouleServer& server, Tally* t) {
  const auto before = server.scheduler().Devices();
  const LevelResult g = clients.Run(api, streams, per_stream);
  const auto after = server.scheduler().Devices();
  for (size_t i = 0; i < after.size(); ++i) {
    t->sched += after[i].scheduler_seconds - before[i].scheduler_seconds;
    t->dev += after[i].device_seconds - before[i].device_seconds;
  }
  Merge(g, &t->r);
  return g.generated / g.wall;
}

std::string VsEngine(std::vector<double> shares, double engine_mean) {
  if (shares.empty()) return "";
  std::sort(shares.begin(), shares.end());
  return absl::StrFormat("%.1f%% of %.1f (rounds %.1f-%.1f%%)",
                         100 * shares[shares.size() / 2], engine_mean,
                         100 * shares.front(), 100 * shares.back());
}

// The default (gRPC only) table keeps the columns it always had; with
// --api=http or both, each row starts with its API and adds the client
// process's CPU per token, which shows whether the clients, on the same
// cores as the server, held the server back.
void PrintHeader(bool labelled) {
  std::printf("%s%7s %9s %10s %10s %10s %10s %10s %10s %9s %s%11s %12s\n",
              labelled ? "api  " : "", "streams", "tok/s", "TTFT p50",
              "TTFT p90", "TTFT p99", "ITL p50", "ITL p90", "ITL p99",
              "sched %", labelled ? "client/tok " : "", "J/token", "vs engine");
}

void PrintRow(const char* api, int streams, Tally& t, double engine_mean) {
  LevelResult& r = t.r;
  const std::string label = api ? absl::StrFormat("%-4s ", api) : "";
  const std::string client =
      !api ? ""
      : r.client_cpu > 0
          ? absl::StrFormat("%8.0fus ", 1e6 * r.client_cpu / r.generated)
          : absl::StrFormat("%10s ", "-");
  std::printf(
      "%s%7d %9.1f %8.1fms %8.1fms %8.1fms %8.1fms %8.1fms %8.1fms %8.2f%% "
      "%s%11.5f %s %s%s\n",
      label.c_str(), streams, r.generated / r.wall,
      Percentile(r.ttft, 50) * 1e3, Percentile(r.ttft, 90) * 1e3,
      Percentile(r.ttft, 99) * 1e3, Percentile(r.itl, 50) * 1e3,
      Percentile(r.itl, 90) * 1e3, Percentile(r.itl, 99) * 1e3,
      100.0 * t.sched / (t.sched + t.dev), client.c_str(),
      r.metered ? r.joules / r.metered : 0.0, r.source.c_str(),
      VsEngine(t.shares, engine_mean).c_str(),
      r.errors ? (" errors: " + std::to_string(r.errors)).c_str() : "");
}

// One concurrency: `rounds` rounds of each API, each between two engine
// rounds and compared with them: the VM's bandwidth and SIMD throughput
// change by up to 2x within seconds, which a single before/after pair does
// not cancel. With two APIs their order swaps every round.
void RunLevel(int streams, const std::vector<Api>& apis, Clients& clients,
              const joule::server::JouleServer& server, Baseline* engine,
              bool labelled) {
  const int tokens = absl::GetFlag(FLAGS_tokens);
  const int rounds =
      engine || apis.size() > 1 ? std::max(1, absl::GetFlag(FLAGS_rounds)) : 1;
  const int per_stream = std::max(
      1, absl::GetFlag(FLAGS_tokens_per_level) / (streams * tokens * rounds));
  auto engine_round = [&] {
    return engine ? engine->Round(streams, per_stream, tokens) : 0.0;
  };
  double engine_prev = engine_round(), engine_sum = engine_prev;
  int engine_rounds = 1;
  std::vector<Tally> tally(apis.size());
  for (int round = 0; round < rounds; ++round) {
    for (size_t k = 0; k < apis.size(); ++k) {
      const size_t i = (k + round) % apis.size();
      const double served =
          ServedRound(apis[i], streams, per_stream, clients, server, &tally[i]);
      if (!engine) continue;
      const double engine_next = engine_round();
      tally[i].shares.push_back(served / ((engine_prev + engine_next) / 2));
      engine_sum += engine_next;
      ++engine_rounds;
      engine_prev = engine_next;
    }
  }
  for (size_t i = 0; i < apis.size(); ++i) {
    PrintRow(labelled ? ApiName(apis[i]) : nullptr, streams, tally[i],
             engine_sum / engine_rounds);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built without NDEBUG, which leaves deadlock detection
  // on: every absl::Mutex lock, gRPC's own included, updated a process-wide
  // lock graph. Tests keep it; serving does not need it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::vector<Api> apis = ParseApis(absl::GetFlag(FLAGS_api));
  const bool http = apis.back() == Api::kHttp;
  const int tokens = absl::GetFlag(FLAGS_tokens);
  Clients clients(absl::GetFlag(FLAGS_client_process), tokens);
  spdlog::set_level(spdlog::level::warn);  // No per-request lines.
  auto ckpt = joule::bench::Synthetic(absl::GetFlag(FLAGS_shape),
                                      absl::GetFlag(FLAGS_version));
  joule::server::ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  if (http) {
    o.http.host = o.host;
    o.http.port = 0;
  }
  o.checkpoint_path = ckpt->path();
  o.tokenizer_path = joule::bench::SharedModel("tokenizer.bin");
  o.devices = absl::StrSplit(absl::GetFlag(FLAGS_devices), ',');
  auto server = joule::server::JouleServer::Start(o);
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 1;
  }
  clients.Connect((*server)->port(), (*server)->http_port());
  std::printf(
      "serving_bench: %s-shaped synthetic v%d checkpoint, devices=%s, "
      "%d tokens per request, real %s over loopback, clients %s\n",
      absl::GetFlag(FLAGS_shape).c_str(), absl::GetFlag(FLAGS_version),
      absl::GetFlag(FLAGS_devices).c_str(), tokens,
      apis.size() > 1 ? "gRPC and HTTP (SSE)"
      : http          ? "HTTP (SSE)"
                      : "gRPC",
      absl::GetFlag(FLAGS_client_process) ? "in their own process"
                                          : "in the server's process");
  std::unique_ptr<Baseline> engine = Baseline::Make(*ckpt, o.tokenizer_path);
  const bool labelled = absl::GetFlag(FLAGS_api) != "grpc";
  PrintHeader(labelled);
  for (absl::string_view level :
       absl::StrSplit(absl::GetFlag(FLAGS_concurrency), ',')) {
    RunLevel(std::stoi(std::string(level)), apis, clients, **server,
             engine.get(), labelled);
  }
  (*server)->Shutdown(absl::Seconds(5));
  return 0;
}
