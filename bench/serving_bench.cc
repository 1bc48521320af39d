// Serving over the real gRPC path: throughput, time to first token and
// inter-token latency percentiles at 1, 4, 16 and 64 concurrent streams on a
// stories15M-shaped synthetic checkpoint, the scheduler's own time per
// step as a share of the step, and (on the CPU engine) the same requests
// run on the engine directly, so the serving overhead is one number.
//   bazel run -c opt //bench:serving_bench [-- --devices=cpu --tokens=32]
#include <algorithm>
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

using joule::clients::Percentile;

ABSL_FLAG(bool, engine_baseline, true,
          "With --devices=cpu: also run the same requests (prompt, length, "
          "sampling, concurrency as one batch) on a FastEngine called "
          "directly, before and after the gRPC run, and print gRPC's share "
          "of that engine's tok/s: the serving overhead.");

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
    if (!dev.Prefill(chunks, &out).ok()) std::abort();
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
      if (!dev.Decode(chunks, &out).ok()) std::abort();
    }
    for (uint64_t id : ids) dev.Release(id);
  }
  return generated / absl::ToDoubleSeconds(absl::Now() - start);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
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
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string((*server)->port()),
                          grpc::InsecureChannelCredentials());
  const int tokens = absl::GetFlag(FLAGS_tokens);
  std::printf(
      "serving_bench: %s-shaped synthetic v%d checkpoint, devices=%s, "
      "%d tokens per request, real gRPC over loopback\n",
      absl::GetFlag(FLAGS_shape).c_str(), absl::GetFlag(FLAGS_version),
      absl::GetFlag(FLAGS_devices).c_str(), tokens);
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
    const int per_stream =
        std::max(1, absl::GetFlag(FLAGS_tokens_per_level) / (streams * tokens));
    absl::Mutex mu;
    std::vector<double> ttft, itl;
    int64_t generated = 0;
    double joules = 0;
    int64_t metered = 0;
    std::string source = "none";
    int errors = 0;
    const double engine_before =
        engine ? EngineAlone(*engine, *tokenizer, streams, per_stream, tokens)
               : 0;
    const auto before = (*server)->scheduler().Devices();
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
              joules += msg.token().energy_joules();
              ++metered;
              source =
                  joule::v1::EnergySource_Name(msg.token().energy_source());
            }
          }
          const bool ok = reader->Finish().ok();
          absl::MutexLock l(&mu);
          if (!ok) ++errors;
          if (my_ttft >= 0) ttft.push_back(my_ttft);
          itl.insert(itl.end(), my_itl.begin(), my_itl.end());
          generated += n;
        }
      });
    }
    for (auto& t : threads) t.join();
    const double wall = absl::ToDoubleSeconds(absl::Now() - start);
    const auto after = (*server)->scheduler().Devices();
    const double engine_tps =
        engine ? (engine_before + EngineAlone(*engine, *tokenizer, streams,
                                              per_stream, tokens)) /
                     2
               : 0;
    double sched = 0, dev = 0;
    for (size_t i = 0; i < after.size(); ++i) {
      sched += after[i].scheduler_seconds - before[i].scheduler_seconds;
      dev += after[i].device_seconds - before[i].device_seconds;
    }
    const std::string vs =
        engine
            ? absl::StrFormat("%.1f%% of %.1f",
                              100 * generated / wall / engine_tps, engine_tps)
            : "";
    std::printf(
        "%7d %9.1f %8.1fms %8.1fms %8.1fms %8.1fms %8.1fms %8.1fms %8.2f%% "
        "%11.5f %s %s%s\n",
        streams, generated / wall, Percentile(ttft, 50) * 1e3,
        Percentile(ttft, 90) * 1e3, Percentile(ttft, 99) * 1e3,
        Percentile(itl, 50) * 1e3, Percentile(itl, 90) * 1e3,
        Percentile(itl, 99) * 1e3, 100.0 * sched / (sched + dev),
        metered ? joules / metered : 0.0, source.c_str(), vs.c_str(),
        errors ? (" errors: " + std::to_string(errors)).c_str() : "");
    std::fflush(stdout);
  }
  (*server)->Shutdown(absl::Seconds(5));
  return 0;
}
