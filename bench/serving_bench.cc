// Serving over the real gRPC path: throughput, time to first token and
// inter-token latency percentiles at 1, 4, 16 and 64 concurrent streams on a
// stories15M-shaped synthetic checkpoint, the scheduler's own time per
// step as a share of the step, and (on the CPU engine) the same requests
// run on the engine directly, so the serving overhead is one number.
//   bazel run -c opt //bench:serving_bench [-- --devices=cpu --tokens=32]
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
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_models.h"
#include "clients/load_report.h"
#include "device/cpu/fast_engine.h"
#include "grpcpp/grpcpp.h"
#include "model/sampler.h"
#include "model/tokenizer.h"
#include "proto/joule.grpc.pb.h"
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

using joule::clients::Percentile;
ABSL_FLAG(int, rounds, 5,
          "With the engine baseline: gRPC rounds per concurrency, each "
          "between two engine rounds; \"vs engine\" is the median round's "
          "share.");
ABSL_FLAG(bool, engine_baseline, true,
          "With --devices=cpu: also run the same requests (prompt, length, "
          "sampling, concurrency as one batch) on a FastEngine called "
          "directly, alternating with the gRPC rounds, and print gRPC's "
          "share of that engine's tok/s: the serving overhead.");

namespace {

const char kPrompt[] = "Once upon a time, in a small village by the sea, lived";

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
  std::string source = "none";
  std::vector<double> ttft, itl;  // Seconds.
};

// `streams` client threads, each sending `per_stream` requests one after
// another and reading every token as it arrives.
LevelResult RunClients(const std::shared_ptr<grpc::Channel>& channel,
                       int streams, int per_stream, int tokens) {
  absl::Mutex mu;
  LevelResult res;
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int c = 0; c < streams; ++c) {
    threads.emplace_back([&, c] {
      auto stub = joule::v1::Joule::NewStub(channel);
      for (int r = 0; r < per_stream; ++r) {
        joule::v1::GenerateRequest req;
        req.set_prompt(kPrompt);
        req.set_max_tokens(tokens);
        req.set_ignore_eos(true);
        req.set_temperature(0.8f);
        req.set_seed(c * 1000 + r);
        grpc::ClientContext ctx;
        const absl::Time sent = absl::Now();
        auto reader = stub->GenerateStream(&ctx, req);
        joule::v1::GenerateStreamResponse msg;
        std::vector<double> my_itl;
        double my_ttft = -1;
        absl::Time last = sent;
        int n = 0;
        while (reader->Read(&msg)) {
          if (!msg.has_token()) continue;
          const absl::Time now = absl::Now();
          if (n == 0) {
            my_ttft = absl::ToDoubleSeconds(now - sent);
          } else {
            my_itl.push_back(absl::ToDoubleSeconds(now - last));
          }
          last = now;
          ++n;
          if (msg.token().has_energy_joules()) {
            absl::MutexLock l(&mu);
            res.joules += msg.token().energy_joules();
            ++res.metered;
            res.source =
                joule::v1::EnergySource_Name(msg.token().energy_source());
          }
        }
        const bool ok = reader->Finish().ok();
        absl::MutexLock l(&mu);
        if (!ok) ++res.errors;
        if (my_ttft >= 0) res.ttft.push_back(my_ttft);
        res.itl.insert(res.itl.end(), my_itl.begin(), my_itl.end());
        res.generated += n;
      }
    });
  }
  for (auto& t : threads) t.join();
  res.wall = absl::ToDoubleSeconds(absl::Now() - start);
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
         Put(fd, r.wall) && Put(fd, r.joules) &&
         Put(fd, static_cast<uint64_t>(r.source.size())) &&
         WriteAll(fd, r.source.data(), r.source.size()) &&
         PutVector(fd, r.ttft) && PutVector(fd, r.itl);
}

bool ReceiveResult(int fd, LevelResult* r) {
  uint64_t n;
  if (!(Get(fd, &r->generated) && Get(fd, &r->metered) && Get(fd, &r->errors) &&
        Get(fd, &r->wall) && Get(fd, &r->joules) && Get(fd, &n))) {
    return false;
  }
  r->source.resize(n);
  return ReadAll(fd, r->source.data(), n) && GetVector(fd, &r->ttft) &&
         GetVector(fd, &r->itl);
}

// The client process: reads the server's port, then runs one level per
// (streams, per_stream) command until streams is 0 or the bench is gone.
int ClientMain(int in, int out, int tokens) {
  int32_t port;
  if (!Get(in, &port)) return 1;
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials());
  int32_t streams, per_stream;
  while (Get(in, &streams) && streams > 0 && Get(in, &per_stream)) {
    if (!SendResult(out, RunClients(channel, streams, per_stream, tokens))) {
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

  void Connect(int port) {
    if (pid_ > 0) {
      if (!Put(to_, int32_t{port})) std::exit(1);
    } else {
      channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials());
    }
  }

  LevelResult Run(int streams, int per_stream) {
    if (pid_ <= 0) return RunClients(channel_, streams, per_stream, tokens_);
    LevelResult r;
    if (!Put(to_, int32_t{streams}) || !Put(to_, int32_t{per_stream}) ||
        !ReceiveResult(from_, &r)) {
      std::fprintf(stderr, "the client process died\n");
      std::exit(1);
    }
    return r;
  }

 private:
  const int tokens_;
  pid_t pid_ = 0;
  int to_ = -1, from_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built without NDEBUG, which leaves deadlock detection
  // on: every absl::Mutex lock, gRPC's own included, updated a process-wide
  // lock graph. Tests keep it; serving does not need it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const int tokens = absl::GetFlag(FLAGS_tokens);
  Clients clients(absl::GetFlag(FLAGS_client_process), tokens);
  spdlog::set_level(spdlog::level::warn);  // No per-request lines.
  auto ckpt = joule::bench::Synthetic(absl::GetFlag(FLAGS_shape),
                                      absl::GetFlag(FLAGS_version));
  joule::server::ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.checkpoint_path = ckpt->path();
  o.tokenizer_path = joule::bench::SharedModel("tokenizer.bin");
  o.devices = absl::StrSplit(absl::GetFlag(FLAGS_devices), ',');
  auto server = joule::server::JouleServer::Start(o);
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 1;
  }
  clients.Connect((*server)->port());
  std::printf(
      "serving_bench: %s-shaped synthetic v%d checkpoint, devices=%s, "
      "%d tokens per request, real gRPC over loopback, clients %s\n",
      absl::GetFlag(FLAGS_shape).c_str(), absl::GetFlag(FLAGS_version),
      absl::GetFlag(FLAGS_devices).c_str(), tokens,
      absl::GetFlag(FLAGS_client_process) ? "in their own process"
                                          : "in the server's process");
  // The engine-alone baseline: its own FastEngine on the same checkpoint
  // (the server's is busy serving), idle while gRPC runs.
  std::unique_ptr<joule::device::FastEngine> engine;
  std::unique_ptr<joule::model::Tokenizer> tokenizer;
  if (absl::GetFlag(FLAGS_engine_baseline) &&
      absl::GetFlag(FLAGS_devices) == "cpu") {
    engine = std::make_unique<joule::device::FastEngine>(
        joule::device::FastEngine::Options{});
    auto t = joule::model::Tokenizer::Load(o.tokenizer_path,
                                           ckpt->config().vocab_size);
    if (!engine->LoadModel(*ckpt).ok() || !t.ok()) return 1;
    tokenizer = std::move(*t);
  }
  std::printf("%7s %9s %10s %10s %10s %10s %10s %10s %9s %11s %12s\n",
              "streams", "tok/s", "TTFT p50", "TTFT p90", "TTFT p99", "ITL p50",
              "ITL p90", "ITL p99", "sched %", "J/token", "vs engine");
  for (absl::string_view level :
       absl::StrSplit(absl::GetFlag(FLAGS_concurrency), ',')) {
    const int streams = std::stoi(std::string(level));
    const int rounds = engine ? std::max(1, absl::GetFlag(FLAGS_rounds)) : 1;
    const int per_stream = std::max(
        1, absl::GetFlag(FLAGS_tokens_per_level) / (streams * tokens * rounds));
    // Engine and gRPC rounds alternate, and each gRPC round is compared
    // with the engine rounds either side of it: the VM's bandwidth and
    // SIMD throughput change by up to 2x within seconds, which a single
    // before/after pair does not cancel.
    auto engine_round = [&] {
      return engine
                 ? EngineAlone(*engine, *tokenizer, streams, per_stream, tokens)
                 : 0.0;
    };
    double engine_prev = engine_round(), engine_sum = engine_prev;
    std::vector<double> shares;
    LevelResult r;
    double sched = 0, dev = 0;
    for (int round = 0; round < rounds; ++round) {
      const auto before = (*server)->scheduler().Devices();
      LevelResult g = clients.Run(streams, per_stream);
      const auto after = (*server)->scheduler().Devices();
      for (size_t i = 0; i < after.size(); ++i) {
        sched += after[i].scheduler_seconds - before[i].scheduler_seconds;
        dev += after[i].device_seconds - before[i].device_seconds;
      }
      if (engine) {
        const double engine_next = engine_round();
        shares.push_back(g.generated / g.wall /
                         ((engine_prev + engine_next) / 2));
        engine_sum += engine_next;
        engine_prev = engine_next;
      }
      r.generated += g.generated;
      r.metered += g.metered;
      r.errors += g.errors;
      r.wall += g.wall;
      r.joules += g.joules;
      r.source = g.source;
      r.ttft.insert(r.ttft.end(), g.ttft.begin(), g.ttft.end());
      r.itl.insert(r.itl.end(), g.itl.begin(), g.itl.end());
    }
    std::string vs;
    if (engine) {
      std::sort(shares.begin(), shares.end());
      vs = absl::StrFormat("%.1f%% of %.1f (rounds %.1f-%.1f%%)",
                           100 * shares[shares.size() / 2],
                           engine_sum / (rounds + 1), 100 * shares.front(),
                           100 * shares.back());
    }
    std::printf(
        "%7d %9.1f %8.1fms %8.1fms %8.1fms %8.1fms %8.1fms %8.1fms %8.2f%% "
        "%11.5f %s %s%s\n",
        streams, r.generated / r.wall, Percentile(r.ttft, 50) * 1e3,
        Percentile(r.ttft, 90) * 1e3, Percentile(r.ttft, 99) * 1e3,
        Percentile(r.itl, 50) * 1e3, Percentile(r.itl, 90) * 1e3,
        Percentile(r.itl, 99) * 1e3, 100.0 * sched / (sched + dev),
        r.metered ? r.joules / r.metered : 0.0, r.source.c_str(), vs.c_str(),
        r.errors ? (" errors: " + std::to_string(r.errors)).c_str() : "");
    std::fflush(stdout);
  }
  (*server)->Shutdown(absl::Seconds(5));
  return 0;
}
