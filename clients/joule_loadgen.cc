// joule_loadgen: drives GenerateStream at a concurrency or a request rate and
// reports throughput, latency percentiles, J/token by device and errors.
//   bazel run //clients:joule_loadgen -- --target=localhost:50051
//   --concurrency=8 --requests=200
#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "clients/channel.h"
#include "clients/load_report.h"
#include "grpcpp/grpcpp.h"
#include "proto/joule.grpc.pb.h"
#include "proto/status_names.h"

ABSL_FLAG(std::string, target, "localhost:50051", "Server address.");
ABSL_FLAG(int, concurrency, 4, "Streams in flight at once.");
ABSL_FLAG(double, rate, 0,
          "Requests started per second (open loop, at most --concurrency in "
          "flight); 0: each stream starts its next request at once.");
ABSL_FLAG(int, requests, 100, "Requests to send (0: until --duration).");
ABSL_FLAG(double, duration, 0, "Seconds to run (0: until --requests).");
ABSL_FLAG(std::string, prompt_file, "",
          "Prompts, one per line, used in turn. Empty: a few built-in ones.");
ABSL_FLAG(int, max_tokens, 64, "Tokens per request.");
ABSL_FLAG(double, temperature, 1.0, "Sampling temperature.");
ABSL_FLAG(bool, ignore_eos, true, "Generate max_tokens every time.");
ABSL_FLAG(std::string, device, "",
          "Preferred device (empty: the server routes).");
ABSL_FLAG(double, deadline_seconds, 120, "Per-request deadline.");
ABSL_FLAG(std::string, format, "table", "table, json or both.");
ABSL_FLAG(std::string, output, "", "Also write the JSON report here.");

namespace {

using joule::clients::RequestRecord;

std::vector<std::string> LoadPrompts(const std::string& path) {
  if (path.empty()) {
    return {"Once upon a time", "Lily and Tom went to the park",
            "The little dog was very happy because",
            "One day, a girl named Sue"};
  }
  std::ifstream in(path);
  std::vector<std::string> prompts;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) prompts.push_back(line);
  }
  return prompts;
}

RequestRecord RunOne(joule::v1::Joule::Stub& stub,
                     const joule::clients::Connection& conn,
                     const std::string& prompt, uint64_t seed) {
  joule::v1::GenerateRequest req;
  req.set_prompt(prompt);
  req.set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  req.set_temperature(static_cast<float>(absl::GetFlag(FLAGS_temperature)));
  req.set_ignore_eos(absl::GetFlag(FLAGS_ignore_eos));
  req.set_device(absl::GetFlag(FLAGS_device));
  req.set_seed(seed);
  grpc::ClientContext ctx;
  conn.Prepare(&ctx);
  ctx.set_deadline(absl::ToChronoTime(
      absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_deadline_seconds))));
  RequestRecord rec;
  const absl::Time start = absl::Now();
  absl::Time last = start;
  auto reader = stub.GenerateStream(&ctx, req);
  joule::v1::GenerateStreamResponse msg;
  while (reader->Read(&msg)) {
    if (msg.has_summary()) rec.instance = msg.summary().server_instance();
    if (!msg.has_token()) continue;
    const absl::Time now = absl::Now();
    if (rec.tokens == 0) {
      rec.ttft = now - start;
    } else {
      rec.inter_token.push_back(now - last);
    }
    last = now;
    ++rec.tokens;
    const auto& t = msg.token();
    if (t.has_energy_joules()) {
      auto& e = rec.energy[t.device()];
      e.tokens++;
      e.joules += t.energy_joules();
      e.source = joule::proto::EnergySourceName(t.energy_source());
    }
  }
  grpc::Status s = reader->Finish();
  rec.total = absl::Now() - start;
  rec.code = joule::proto::StatusCodeName(s.error_code());
  rec.error = s.error_message();
  return rec;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Load-tests a Joule server over GenerateStream.");
  absl::ParseCommandLine(argc, argv);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  const int total = absl::GetFlag(FLAGS_requests);
  const double duration = absl::GetFlag(FLAGS_duration);
  const double rate = absl::GetFlag(FLAGS_rate);
  if (concurrency < 1 || (total <= 0 && duration <= 0) || rate < 0) {
    std::fprintf(
        stderr,
        "error: need --concurrency >= 1, --requests or --duration > 0, "
        "--rate >= 0\n");
    return 2;
  }
  const std::vector<std::string> prompts =
      LoadPrompts(absl::GetFlag(FLAGS_prompt_file));
  if (prompts.empty()) {
    std::fprintf(stderr, "error: no prompts in %s\n",
                 absl::GetFlag(FLAGS_prompt_file).c_str());
    return 2;
  }
  auto conn = joule::clients::ConnectFromFlags(absl::GetFlag(FLAGS_target));
  if (!conn.ok()) {
    std::fprintf(stderr, "error: %s\n",
                 std::string(conn.status().message()).c_str());
    return 2;
  }
  const absl::Time start = absl::Now();
  const absl::Time end =
      duration > 0 ? start + absl::Seconds(duration) : absl::InfiniteFuture();
  std::atomic<int64_t> next{0};
  absl::Mutex mu;
  std::vector<RequestRecord> records;
  std::vector<std::thread> workers;
  for (int w = 0; w < concurrency; ++w) {
    workers.emplace_back([&] {
      auto stub = joule::v1::Joule::NewStub(conn->channel);
      while (true) {
        const int64_t i = next.fetch_add(1);
        if (total > 0 && i >= total) return;
        if (rate > 0) {  // Open loop: request i starts at start + i / rate.
          const absl::Time at = start + absl::Seconds(i / rate);
          if (at >= end) return;
          absl::SleepFor(at - absl::Now());
        }
        if (absl::Now() >= end) return;
        RequestRecord rec =
            RunOne(*stub, *conn, prompts[i % prompts.size()], i);
        absl::MutexLock l(&mu);
        records.push_back(std::move(rec));
      }
    });
  }
  for (auto& t : workers) t.join();
  const std::string options = absl::StrFormat(
      "{\"call\": \"joule.v1.Joule.GenerateStream\", \"host\": \"%s\", "
      "\"concurrency\": %d, \"rate\": %g, \"maxTokens\": %d}",
      absl::GetFlag(FLAGS_target), concurrency, rate,
      absl::GetFlag(FLAGS_max_tokens));
  joule::clients::LoadReport report(std::move(records), absl::Now() - start,
                                    options);
  const std::string format = absl::GetFlag(FLAGS_format);
  if (format == "table" || format == "both")
    std::fputs(report.Table().c_str(), stdout);
  if (format == "json" || format == "both")
    std::fputs(report.Json().c_str(), stdout);
  if (!absl::GetFlag(FLAGS_output).empty()) {
    std::ofstream(absl::GetFlag(FLAGS_output)) << report.Json();
  }
  return 0;
}
