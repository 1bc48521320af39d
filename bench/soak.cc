// Soak: joule_server under steady streaming load for --duration seconds while
// its RISC-V simulator daemon is killed every --kill_every_seconds, checking
// what a long-running service must not do: lose a stream it accepted, or
// grow its memory, threads or file descriptors.
//
// The traffic mixes what real clients send: normal streams (some preferring
// the riscv device, so kills force failovers to cpu), streams the client
// cancels part-way, and requests the server must refuse (invalid UTF-8).
//   bazel run -c opt //bench:soak -- --duration=1800 --check
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/grpcpp.h"
#include "proto/joule.grpc.pb.h"
#include "tests/subprocess.h"

ABSL_FLAG(double, duration, 60, "Seconds of load.");
ABSL_FLAG(int, clients, 8, "Concurrent client threads.");
ABSL_FLAG(double, kill_every_seconds, 10,
          "SIGKILL the server's riscv_simd this often (0: never).");
ABSL_FLAG(double, sample_seconds, 5, "Seconds between /proc samples.");
ABSL_FLAG(double, warmup_seconds, 15,
          "Load before the baseline sample (allocator pools, thread caches "
          "and gRPC's threads settle).");
ABSL_FLAG(double, rss_tolerance_mib, 16,
          "RSS may grow this much over the baseline ...");
ABSL_FLAG(double, rss_tolerance_percent, 10, "... or this share of it.");
ABSL_FLAG(int, thread_margin, 4, "Threads allowed over the baseline.");
ABSL_FLAG(int, fd_margin, 4, "File descriptors allowed over the baseline.");
ABSL_FLAG(std::string, server, "",
          "joule_server binary (default: the one in the runfiles).");
ABSL_FLAG(std::string, server_args, "--devices=cpu,riscv",
          "Extra server arguments, space-separated.");
ABSL_FLAG(bool, check, false,
          "Exit 1 if a stream was lost or a resource grew past its margin.");

namespace {

// --- The server process, as /proc shows it. --------------------------------

struct ProcSample {
  double seconds = 0;
  double rss_mib = 0;
  int threads = 0;
  int fds = 0;
};

ProcSample ReadProc(pid_t pid, double seconds) {
  ProcSample s;
  s.seconds = seconds;
  std::ifstream status(absl::StrFormat("/proc/%d/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    // "VmRSS:\t  1234 kB": fields are separated by tabs and spaces.
    std::vector<std::string> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.size() < 2) continue;
    int64_t v = 0;
    if (f[0] == "VmRSS:" && absl::SimpleAtoi(f[1], &v)) s.rss_mib = v / 1024.0;
    if (f[0] == "Threads:" && absl::SimpleAtoi(f[1], &v)) s.threads = v;
  }
  if (DIR* d = opendir(absl::StrFormat("/proc/%d/fd", pid).c_str())) {
    while (dirent* e = readdir(d)) s.fds += e->d_name[0] != '.';
    closedir(d);
  }
  return s;
}

// --- Traffic. ---------------------------------------------------------------

enum class Kind { kNormal, kPreferRiscv, kCancel, kDeadline, kInvalid };

struct Tally {
  int64_t requests = 0, tokens = 0, completed = 0, cancelled = 0;
  int64_t refused = 0, expired = 0, failovers = 0, lost = 0;
  std::map<std::string, int64_t> lost_by_code;
  std::vector<std::string> lost_examples;
};

Kind PickKind(std::mt19937_64& rng) {
  const int r = rng() % 16;
  if (r == 0) return Kind::kInvalid;
  if (r <= 2) return Kind::kCancel;
  if (r == 3) return Kind::kDeadline;
  if (r <= 8) return Kind::kPreferRiscv;
  return Kind::kNormal;
}

joule::v1::GenerateRequest MakeRequest(Kind kind, std::mt19937_64& rng) {
  static const char* kPrompts[] = {"Once upon a time", "The little dog",
                                   "Lily wanted to", "One day, a bird", ""};
  joule::v1::GenerateRequest req;
  req.set_prompt(kPrompts[rng() % 5]);
  req.set_max_tokens(16 + rng() % 49);
  req.set_temperature(0.8f);
  req.set_seed(rng());
  req.set_ignore_eos(true);
  if (kind == Kind::kPreferRiscv) req.set_device("riscv");
  if (kind == Kind::kInvalid) req.set_prompt("bad \xC3\x28 utf-8");
  if (kind == Kind::kDeadline) req.set_max_tokens(256);
  return req;
}

// Runs one stream and records how it ended. A stream is lost when the server
// accepted it and then failed it, or ended it without its summary.
void RunOne(joule::v1::Joule::Stub& stub, Kind kind, std::mt19937_64& rng,
            Tally* t) {
  grpc::ClientContext ctx;
  // A deadline stream asks for more than it can get in its time, so the
  // server must end it with DEADLINE_EXCEEDED and free its sequence.
  const absl::Duration deadline = kind == Kind::kDeadline
                                      ? absl::Milliseconds(10 + rng() % 90)
                                      : absl::Seconds(60);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  auto reader = stub.GenerateStream(&ctx, MakeRequest(kind, rng));
  joule::v1::GenerateStreamResponse msg;
  int64_t tokens = 0;
  bool summary = false, consistent = true;
  const int64_t cancel_after = 1 + rng() % 8;
  while (reader->Read(&msg)) {
    if (msg.has_token()) ++tokens;
    if (msg.has_summary()) {
      summary = true;
      t->failovers += msg.summary().failovers();
      consistent = msg.summary().completion_tokens() == tokens;
    }
    if (kind == Kind::kCancel && tokens == cancel_after) ctx.TryCancel();
  }
  const grpc::Status s = reader->Finish();
  t->requests++;
  t->tokens += tokens;
  const bool ok = s.ok() && summary && consistent;
  if (kind == Kind::kInvalid && s.error_code() == grpc::INVALID_ARGUMENT) {
    t->refused++;
  } else if (kind == Kind::kCancel && s.error_code() == grpc::CANCELLED) {
    t->cancelled++;
  } else if (kind == Kind::kDeadline &&
             s.error_code() == grpc::DEADLINE_EXCEEDED) {
    t->expired++;
  } else if (ok && kind != Kind::kInvalid) {
    t->completed++;
  } else {
    t->lost++;
    t->lost_by_code[std::to_string(s.error_code())]++;
    if (t->lost_examples.size() < 5) {
      t->lost_examples.push_back(absl::StrFormat(
          "kind %d: code %d '%s', %d tokens, summary %d",
          static_cast<int>(kind), s.error_code(), s.error_message(), tokens,
          summary));
    }
  }
}

void ClientLoop(const std::string& target, int index, absl::Time end,
                const std::atomic<bool>* stop, Tally* out) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto stub = joule::v1::Joule::NewStub(channel);
  std::mt19937_64 rng(1000 + index);
  while (absl::Now() < end && !stop->load()) {
    RunOne(*stub, PickKind(rng), rng, out);
  }
}

// --- Verdict. ----------------------------------------------------------------

struct Limits {
  double rss_mib;
  int threads, fds;
};

Limits LimitsFor(const ProcSample& base) {
  const double pct = absl::GetFlag(FLAGS_rss_tolerance_percent) / 100;
  return {base.rss_mib +
              std::max(absl::GetFlag(FLAGS_rss_tolerance_mib), pct * base.rss_mib),
          base.threads + absl::GetFlag(FLAGS_thread_margin),
          base.fds + absl::GetFlag(FLAGS_fd_margin)};
}

// Growth is judged on the last third of the run, so one busy moment (a
// failover spawning a daemon connection) is not a leak, but a steady climb is.
std::vector<std::string> Verdict(const std::vector<ProcSample>& samples,
                                 size_t baseline, const Tally& t) {
  std::vector<std::string> failures;
  if (t.lost > 0) failures.push_back(absl::StrFormat("%d streams lost", t.lost));
  if (t.completed == 0) failures.push_back("no stream completed");
  if (baseline >= samples.size()) {
    failures.push_back("too short: no sample after the warm-up");
    return failures;
  }
  const Limits lim = LimitsFor(samples[baseline]);
  const size_t tail = baseline + (samples.size() - baseline) * 2 / 3;
  for (size_t i = tail; i < samples.size(); ++i) {
    const ProcSample& s = samples[i];
    if (s.rss_mib > lim.rss_mib)
      failures.push_back(absl::StrFormat("RSS %.1f MiB at %.0f s > %.1f MiB",
                                         s.rss_mib, s.seconds, lim.rss_mib));
    if (s.threads > lim.threads)
      failures.push_back(absl::StrFormat("%d threads at %.0f s > %d", s.threads,
                                         s.seconds, lim.threads));
    if (s.fds > lim.fds)
      failures.push_back(absl::StrFormat("%d fds at %.0f s > %d", s.fds,
                                         s.seconds, lim.fds));
  }
  return failures;
}

int ServerPort(const joule::testing::Subprocess& server) {
  const std::regex listening("listening on 127\\.0\\.0\\.1:(\\d+)");
  for (int i = 0; i < 3000; ++i) {
    std::smatch m;
    const std::string err = server.Stderr();
    if (std::regex_search(err, m, listening)) return std::stoi(m[1]);
    absl::SleepFor(absl::Milliseconds(10));
  }
  return 0;
}

// The end of a dead server's log, from its first sanitizer report if it has
// one (that is why a sanitizer build exits), else its last lines.
std::string LogTail(const std::string& log) {
  size_t from = std::string::npos;
  for (const char* marker : {"WARNING: ThreadSanitizer", "ERROR: AddressSanitizer",
                             "ERROR: LeakSanitizer", "runtime error:"}) {
    from = std::min(from, log.find(marker));
  }
  if (from == std::string::npos) {
    from = log.size();
    for (int lines = 0; from > 0 && lines < 60; --from) lines += log[from - 1] == '\n';
  }
  from = log.rfind('\n', from);
  return log.substr(from == std::string::npos ? 0 : from + 1, 64 << 10);
}

std::string DefaultServer(const char* argv0) {
  for (std::string root : {std::string(argv0) + ".runfiles",
                           std::string(getenv("RUNFILES_DIR") ?: "")}) {
    const std::string p = root + "/joule/server/joule_server";
    if (!root.empty() && access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

}  // namespace

// The invalid-UTF-8 requests are sent on purpose; protobuf would log each.
void DropUtf8Warnings(google::protobuf::LogLevel level, const char* file,
                      int line, const std::string& message) {
  if (message.find("invalid UTF-8") != std::string::npos) return;
  absl::FPrintF(stderr, "[libprotobuf %s:%d] %s\n", file, line, message);
}

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  google::protobuf::SetLogHandler(DropUtf8Warnings);
  std::string binary = absl::GetFlag(FLAGS_server);
  if (binary.empty()) binary = DefaultServer(argv[0]);
  if (binary.empty()) {
    absl::FPrintF(stderr, "soak: no joule_server; pass --server\n");
    return 2;
  }
  if (!getenv("RUNFILES_DIR"))
    setenv("RUNFILES_DIR", (std::string(argv[0]) + ".runfiles").c_str(), 1);
  char dir[] = "/tmp/joule-soak-XXXXXX";
  if (mkdtemp(dir) == nullptr) return 2;
  std::vector<std::string> args = {binary, "--host=127.0.0.1", "--port=0",
                                   "--metrics_port=0", "--http_port=-1"};
  for (auto a : absl::StrSplit(absl::GetFlag(FLAGS_server_args), ' ',
                               absl::SkipEmpty()))
    args.emplace_back(a);
  joule::testing::Subprocess server(args, std::string(dir) + "/server.out",
                                    std::string(dir) + "/server.err");
  const int port = server.started() ? ServerPort(server) : 0;
  if (port == 0) {
    absl::FPrintF(stderr, "soak: the server did not start:\n%s\n",
                 server.Stderr().c_str());
    return 2;
  }
  const pid_t pid = server.pid();
  const std::string target = absl::StrFormat("127.0.0.1:%d", port);
  absl::PrintF("soak: server pid %d on %s, %s; log %s/server.err\n", pid,
              target, absl::GetFlag(FLAGS_server_args), dir);

  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(absl::GetFlag(FLAGS_duration));
  std::vector<Tally> tallies(absl::GetFlag(FLAGS_clients));
  std::vector<std::thread> clients;
  std::atomic<bool> stop{false};
  for (size_t i = 0; i < tallies.size(); ++i)
    clients.emplace_back(ClientLoop, target, i, end, &stop, &tallies[i]);

  // Sampling and killing share this thread: both are rare and cheap.
  std::vector<ProcSample> samples;
  size_t baseline = SIZE_MAX;
  int kills = 0;
  const double kill_every = absl::GetFlag(FLAGS_kill_every_seconds);
  absl::Time next_sample = start, next_kill = start + absl::Seconds(kill_every);
  // A server that dies ends the run: clients would only spin on refused
  // connections, and its log says why.
  double died_at = -1;
  while (absl::Now() < end) {
    const absl::Time now = absl::Now();
    if (server.Exited()) {
      died_at = absl::ToDoubleSeconds(now - start);
      break;
    }
    if (now >= next_sample) {
      samples.push_back(ReadProc(pid, absl::ToDoubleSeconds(now - start)));
      const ProcSample& s = samples.back();
      if (baseline == SIZE_MAX &&
          s.seconds >= absl::GetFlag(FLAGS_warmup_seconds))
        baseline = samples.size() - 1;
      absl::PrintF("  %6.0f s  RSS %7.1f MiB  threads %3d  fds %3d  kills %d\n",
                  s.seconds, s.rss_mib, s.threads, s.fds, kills);
      std::fflush(stdout);
      next_sample += absl::Seconds(absl::GetFlag(FLAGS_sample_seconds));
    }
    if (kill_every > 0 && now >= next_kill) {
      for (pid_t child : joule::testing::ChildrenNamed(pid, "riscv_simd")) {
        if (kill(child, SIGKILL) == 0) ++kills;
      }
      next_kill += absl::Seconds(kill_every);
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  stop = true;
  for (auto& c : clients) c.join();
  if (died_at < 0)
    samples.push_back(ReadProc(pid, absl::ToDoubleSeconds(absl::Now() - start)));

  Tally t;
  for (const Tally& x : tallies) {
    t.requests += x.requests, t.tokens += x.tokens, t.completed += x.completed;
    t.cancelled += x.cancelled, t.refused += x.refused, t.expired += x.expired;
    t.failovers += x.failovers, t.lost += x.lost;
    for (const auto& [code, n] : x.lost_by_code) t.lost_by_code[code] += n;
    for (const auto& e : x.lost_examples) t.lost_examples.push_back(e);
  }
  int exit_code = 0;
  if (died_at < 0) {
    server.Signal(SIGTERM);
    exit_code = server.Wait(absl::Seconds(60));
  }

  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  absl::PrintF(
      "soak: %.0f s, %d clients: %d requests (%d completed, %d cancelled by "
      "the client, %d past their deadline, %d refused as invalid), %d tokens "
      "(%.0f tok/s), %d daemon kills, %d failovers, %d lost\n",
      secs, tallies.size(), t.requests, t.completed, t.cancelled, t.expired,
      t.refused, t.tokens, t.tokens / secs, kills, t.failovers, t.lost);
  for (const auto& [code, n] : t.lost_by_code)
    absl::PrintF("  lost with grpc code %s: %d\n", code, n);
  for (const auto& e : t.lost_examples) absl::PrintF("  e.g. %s\n", e);
  std::vector<std::string> failures = Verdict(samples, baseline, t);
  if (baseline < samples.size()) {
    const ProcSample &b = samples[baseline], &l = samples.back();
    absl::PrintF(
        "soak: from %.0f s to the end: RSS %.1f -> %.1f MiB, threads %d -> "
        "%d, fds %d -> %d\n",
        b.seconds, b.rss_mib, l.rss_mib, b.threads, l.threads, b.fds, l.fds);
  }
  if (died_at >= 0) {
    failures.push_back(absl::StrFormat("the server died at %.0f s (exit %d)",
                                       died_at, server.Wait()));
    absl::PrintF("soak: the end of the server's log:\n%s\n",
                 LogTail(server.Stderr()));
  } else if (exit_code != 0) {
    failures.push_back(absl::StrFormat("server exited %d on SIGTERM", exit_code));
  }
  for (const auto& f : failures) absl::PrintF("soak: FAIL: %s\n", f);
  absl::PrintF("soak: %s\n", failures.empty() ? "PASS" : "FAIL");
  return absl::GetFlag(FLAGS_check) && !failures.empty() ? 1 : 0;
}
