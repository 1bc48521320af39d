// joule_cli: streams a completion from a Joule server to stdout.
//   bazel run //clients:joule_cli -- --prompt="Once upon a time"
//   --max_tokens=64
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/channel.h"
#include "grpcpp/grpcpp.h"
#include "proto/joule.grpc.pb.h"
#include "proto/status_names.h"

ABSL_FLAG(std::string, target, "localhost:50051", "Server address.");
ABSL_FLAG(std::string, prompt, "", "Text to continue.");
ABSL_FLAG(int, max_tokens, 0,
          "Most tokens to generate (0: until the context is full).");
ABSL_FLAG(double, temperature, 1.0, "Sampling temperature (0 is greedy).");
ABSL_FLAG(int, top_k, 0, "Sample among the k most likely tokens (0: all).");
ABSL_FLAG(double, top_p, 1.0, "Nucleus sampling threshold in (0, 1].");
ABSL_FLAG(int64_t, seed, -1, "Sampling seed (-1: the server picks one).");
ABSL_FLAG(std::vector<std::string>, stop, {},
          "Comma-separated stop sequences.");
ABSL_FLAG(std::string, device, "", "Preferred device (see --list_devices).");
ABSL_FLAG(bool, pin_device, false, "Fail rather than use another device.");
ABSL_FLAG(bool, ignore_eos, false, "Keep generating past end-of-sequence.");
ABSL_FLAG(double, deadline_seconds, 0, "Give up after this long (0: never).");
ABSL_FLAG(bool, list_devices, false, "Print the server's devices and exit.");

namespace {

int Fail(const grpc::Status& s) {
  std::fprintf(stderr, "error: %s: %s\n",
               joule::proto::StatusCodeName(s.error_code()),
               s.error_message().c_str());
  return 1;
}

void SetDeadline(grpc::ClientContext* ctx) {
  if (absl::GetFlag(FLAGS_deadline_seconds) > 0) {
    ctx->set_deadline(absl::ToChronoTime(
        absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_deadline_seconds))));
  }
}

int ListDevices(joule::v1::Joule::Stub& stub,
                const joule::clients::Connection& conn) {
  grpc::ClientContext ctx;
  conn.Prepare(&ctx);
  SetDeadline(&ctx);
  joule::v1::ListDevicesResponse resp;
  grpc::Status s = stub.ListDevices(&ctx, {}, &resp);
  if (!s.ok()) return Fail(s);
  for (const auto& d : resp.devices()) {
    std::printf("%-10s %-8s %-6s batch<=%d context=%d kv=%lld  %s\n",
                d.name().c_str(), d.healthy() ? "healthy" : "DOWN",
                d.precision().c_str(), d.max_batch_size(), d.max_context(),
                static_cast<long long>(d.kv_capacity_tokens()),
                d.description().c_str());
    std::printf(
        "%-10s per token: prefill %.3g s %.3g J, decode %.3g s %.3g J (%s)\n",
        "", d.prefill_seconds_per_token(), d.prefill_joules_per_token(),
        d.decode_seconds_per_token(), d.decode_joules_per_token(),
        joule::proto::EnergySourceName(d.energy_source()));
  }
  return 0;
}

const char* StopReasonName(joule::v1::StopReason r) {
  switch (r) {
    case joule::v1::STOP_REASON_LENGTH:
      return "length";
    case joule::v1::STOP_REASON_EOS:
      return "end of sequence";
    case joule::v1::STOP_REASON_STOP_SEQUENCE:
      return "stop sequence";
    default:
      return "unknown";
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Streams a completion from a Joule server.");
  absl::ParseCommandLine(argc, argv);
  auto conn = joule::clients::ConnectFromFlags(absl::GetFlag(FLAGS_target));
  if (!conn.ok()) {
    std::fprintf(stderr, "error: %s\n",
                 std::string(conn.status().message()).c_str());
    return 2;
  }
  auto stub = joule::v1::Joule::NewStub(conn->channel);
  if (absl::GetFlag(FLAGS_list_devices)) return ListDevices(*stub, *conn);

  joule::v1::GenerateRequest req;
  req.set_prompt(absl::GetFlag(FLAGS_prompt));
  if (absl::GetFlag(FLAGS_max_tokens) != 0) {
    req.set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  }
  req.set_temperature(static_cast<float>(absl::GetFlag(FLAGS_temperature)));
  if (absl::GetFlag(FLAGS_top_k) != 0)
    req.set_top_k(absl::GetFlag(FLAGS_top_k));
  req.set_top_p(static_cast<float>(absl::GetFlag(FLAGS_top_p)));
  if (absl::GetFlag(FLAGS_seed) >= 0) {
    req.set_seed(static_cast<uint64_t>(absl::GetFlag(FLAGS_seed)));
  }
  for (const std::string& s : absl::GetFlag(FLAGS_stop)) req.add_stop(s);
  req.set_device(absl::GetFlag(FLAGS_device));
  req.set_pin_device(absl::GetFlag(FLAGS_pin_device));
  req.set_ignore_eos(absl::GetFlag(FLAGS_ignore_eos));

  grpc::ClientContext ctx;
  conn->Prepare(&ctx);
  SetDeadline(&ctx);
  const absl::Time start = absl::Now();
  auto reader = stub->GenerateStream(&ctx, req);
  joule::v1::GenerateStreamResponse msg;
  joule::v1::GenerationSummary summary;
  bool have_summary = false;
  while (reader->Read(&msg)) {
    if (msg.has_token()) {
      std::fwrite(msg.token().text().data(), 1, msg.token().text().size(),
                  stdout);
      std::fflush(stdout);
    } else if (msg.has_summary()) {
      summary = msg.summary();
      have_summary = true;
    }
  }
  grpc::Status s = reader->Finish();
  std::printf("\n");
  if (!s.ok()) return Fail(s);
  if (!have_summary) {
    std::fprintf(stderr, "error: the stream ended without a summary\n");
    return 1;
  }
  const double wall = absl::ToDoubleSeconds(absl::Now() - start);
  const double decode_span =
      summary.total_seconds() - summary.time_to_first_token_seconds();
  std::string energy;
  if (summary.has_joules_per_token()) {
    energy = absl::StrFormat(
        ", %.4g J/token (%s)", summary.joules_per_token(),
        joule::proto::EnergySourceName(summary.energy_source()));
  }
  std::fprintf(
      stderr,
      "[%d tokens on %s%s%s, %.1f tok/s, TTFT %.1f ms, %.3f s total%s, stop: "
      "%s, seed %llu]\n",
      summary.completion_tokens(), summary.device().c_str(),
      summary.server_instance().empty() ? "" : " of ",
      summary.server_instance().c_str(),
      summary.completion_tokens() > 1 && decode_span > 0
          ? (summary.completion_tokens() - 1) / decode_span
          : summary.completion_tokens() / wall,
      summary.time_to_first_token_seconds() * 1e3, wall, energy.c_str(),
      StopReasonName(summary.stop_reason()),
      static_cast<unsigned long long>(summary.seed()));
  return 0;
}
