// Joule beside its peers on the same GGUF file: llama.cpp (node-llama-cpp's
// prebuilt CPU binaries, bench/peers/package.json; at 1 and 2 threads) and,
// when given one, llama2.c's runq on the same weights as a llama2.c
// checkpoint. Rounds are interleaved (the machine is shared and noisy);
// medians are printed with Joule's ratio to the best peer.
//
// First it checks correctness: on an F32 GGUF of stories260K, llama.cpp's
// greedy tokens and Joule's must be identical (--check_tokens of them).
//
//   (cd bench/peers && npm ci --omit=optional)   # tools/setup.sh does this
//   bazel run -c opt //bench/peers:peers_bench -- [--runq=/path/to/runq]
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "bench/bench_models.h"
#include "device/cpu/fast_engine.h"
#include "model/checkpoint.h"
#include "model/gguf.h"
#include "model/gguf_export.h"
#include "model/sampler.h"
#include "model/tokenizer.h"
#include "tests/subprocess.h"

ABSL_FLAG(std::string, shape, "stories110M", "Synthetic model shape.");
ABSL_FLAG(std::string, types, "q8_0,q4_0", "GGUF weight types to compare.");
ABSL_FLAG(int, tokens, 256, "Decode tokens per stream (positions 1..N).");
ABSL_FLAG(std::string, batches, "1,16", "Concurrent streams.");
ABSL_FLAG(std::string, llama_threads, "1,2", "llama.cpp thread counts.");
ABSL_FLAG(int, rounds, 3, "Interleaved rounds; medians are reported.");
ABSL_FLAG(int, check_tokens, 200,
          "Greedy tokens compared with llama.cpp on stories260K (0: skip).");
ABSL_FLAG(std::string, runq, "",
          "A llama2.c runq binary to include (built by you; none is "
          "committed). Empty: skipped.");
ABSL_FLAG(std::string, node, "node", "Node.js binary (looked up in PATH).");
ABSL_FLAG(std::string, peers_dir, "",
          "bench/peers with its node_modules (default: the workspace's).");
ABSL_FLAG(std::string, work_dir, "/tmp/joule_peers", "Where files go.");

namespace joule::bench {
namespace {

using model::gguf::TensorType;

std::string PeersDir() {
  std::string d = absl::GetFlag(FLAGS_peers_dir);
  if (!d.empty()) return d;
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  return absl::StrCat(ws != nullptr ? ws : ".", "/bench/peers");
}

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "peers_bench: %s\n", why.c_str());
  std::exit(1);
}

// posix_spawn takes a path: a bare name is looked up in PATH.
std::string InPath(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path != nullptr ? path : "/usr/bin", ':')) {
    const std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  Die(absl::StrCat(name, " is not in PATH (--node)"));
}

// Runs llama_cpp.mjs; its last stdout line.
std::string LlamaCpp(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {InPath(absl::GetFlag(FLAGS_node)),
                                   PeersDir() + "/llama_cpp.mjs"};
  argv.insert(argv.end(), args.begin(), args.end());
  testing::RunResult r =
      testing::Run(argv, absl::GetFlag(FLAGS_work_dir), absl::Minutes(10));
  if (r.code != 0) {
    Die(absl::StrCat(
        "llama.cpp (", absl::StrJoin(argv, " "), ") failed: ", r.err,
        "\n(install it: cd bench/peers && npm ci --omit=optional)"));
  }
  std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  if (lines.empty()) Die("llama.cpp printed nothing");
  return lines.back();
}

std::vector<int> ParseIds(absl::string_view json) {
  std::vector<int> ids;
  json = absl::StripPrefix(absl::StripSuffix(json, "]"), "[");
  for (absl::string_view s : absl::StrSplit(json, ',', absl::SkipEmpty())) {
    int v;
    if (!absl::SimpleAtoi(s, &v)) Die(absl::StrCat("bad token id ", s));
    ids.push_back(v);
  }
  return ids;
}

double ParseTokS(absl::string_view json) {
  const size_t colon = json.find(':');
  double v = 0;
  if (colon == json.npos ||
      !absl::SimpleAtod(absl::StripSuffix(json.substr(colon + 1), "}"), &v)) {
    Die(absl::StrCat("bad llama.cpp result ", json));
  }
  return v;
}

std::string Export(const model::Checkpoint& ckpt, const std::string& tokenizer,
                   TensorType type, const std::string& name) {
  auto tok = model::Tokenizer::Load(tokenizer, ckpt.config().vocab_size);
  if (!tok.ok()) Die(tok.status().ToString());
  const std::string path = absl::GetFlag(FLAGS_work_dir) + "/" + name;
  absl::Status s = model::ExportGguf(ckpt, **tok, type, name, path);
  if (!s.ok()) Die(s.ToString());
  return path;
}

// Greedy tokens after BOS, one at a time, as llama.cpp's evaluate does.
std::vector<int> JouleGreedy(device::Device& dev, int count) {
  std::vector<int> out;
  device::StepOutput step;
  std::vector<int> t = {model::Tokenizer::kBos};
  for (int pos = 0; pos < count; ++pos) {
    if (!dev.Step({{1, pos, t}}, &step).ok()) Die("Joule step failed");
    t[0] = model::Argmax(step.row(0));
    out.push_back(t[0]);
  }
  dev.Release(1);
  return out;
}

void CheckAgainstLlamaCpp() {
  const int n = absl::GetFlag(FLAGS_check_tokens);
  if (n <= 0) return;
  auto src = model::Checkpoint::Open(SharedModel("stories260K.bin"));
  if (!src.ok()) Die(src.status().ToString());
  const std::string gguf = Export(**src, SharedModel("tok512.bin"),
                                  TensorType::kF32, "stories260K-f32.gguf");
  auto ckpt = model::Checkpoint::Open(gguf);
  if (!ckpt.ok()) Die(ckpt.status().ToString());
  device::FastEngine dev({});
  if (!dev.LoadModel(**ckpt).ok()) Die("Joule cannot load " + gguf);
  const std::vector<int> joule = JouleGreedy(dev, n);
  const std::vector<int> llama =
      ParseIds(LlamaCpp({"greedy", gguf, std::to_string(n)}));
  size_t same = 0;
  while (same < joule.size() && same < llama.size() &&
         joule[same] == llama[same]) {
    ++same;
  }
  std::printf(
      "correctness: stories260K F32 GGUF, greedy from BOS: %zu of %d "
      "tokens identical to llama.cpp's%s\n\n",
      same, n, same == size_t(n) ? "" : "  <-- MISMATCH");
  if (same != size_t(n)) {
    Die(absl::StrCat("Joule ", absl::StrJoin(joule, ","), "\nllama.cpp ",
                     absl::StrJoin(llama, ",")));
  }
}

// Aggregate decode tok/s of `streams` sequences after a BOS prefill each.
double JouleDecode(device::FastEngine& dev, int streams, int tokens) {
  static uint64_t next = 100;
  device::StepOutput out;
  std::vector<device::SequenceChunk> batch;
  std::vector<std::vector<int>> ids(streams, {model::Tokenizer::kBos});
  const uint64_t first = next;
  next += streams;
  for (int s = 0; s < streams; ++s) batch.push_back({first + s, 0, ids[s]});
  if (!dev.Step(batch, &out).ok()) Die("Joule prefill failed");
  const absl::Time t0 = absl::Now();
  for (int pos = 1; pos <= tokens; ++pos) {
    for (int s = 0; s < streams; ++s) {
      ids[s][0] = model::Argmax(out.row(s));
      batch[s].start_pos = pos;
    }
    if (!dev.Step(batch, &out).ok()) Die("Joule decode failed");
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  for (int s = 0; s < streams; ++s) dev.Release(first + s);
  return double(streams) * tokens / seconds;
}

double RunqDecode(const std::string& v2_path, const std::string& tokenizer,
                  int tokens) {
  testing::RunResult r =
      testing::Run({absl::GetFlag(FLAGS_runq), v2_path, "-z", tokenizer, "-t",
                    "0", "-n", std::to_string(tokens + 1), "-i", "Once"},
                   absl::GetFlag(FLAGS_work_dir), absl::Minutes(10));
  const size_t at = r.err.find("achieved tok/s: ");
  double v = 0;
  if (r.code != 0 || at == std::string::npos ||
      !absl::SimpleAtod(absl::StripAsciiWhitespace(r.err.substr(at + 16, 16)),
                        &v)) {
    Die(absl::StrCat("runq failed: ", r.err));
  }
  return v;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace
}  // namespace joule::bench

int main(int argc, char** argv) {
  using namespace joule::bench;  // NOLINT: one binary's main.
  absl::ParseCommandLine(argc, argv);
  const std::string work = absl::GetFlag(FLAGS_work_dir);
  if (std::system(("mkdir -p " + work).c_str()) != 0)
    Die("cannot make " + work);
  CheckAgainstLlamaCpp();

  const std::string shape = absl::GetFlag(FLAGS_shape);
  const int tokens = absl::GetFlag(FLAGS_tokens);
  std::vector<int> batches, threads;
  for (absl::string_view b : absl::StrSplit(absl::GetFlag(FLAGS_batches), ','))
    batches.push_back(std::stoi(std::string(b)));
  for (absl::string_view t :
       absl::StrSplit(absl::GetFlag(FLAGS_llama_threads), ','))
    threads.push_back(std::stoi(std::string(t)));
  auto fp32 = Synthetic(shape, 0);
  const std::string tokenizer = SharedModel("tokenizer.bin");
  std::printf(
      "%s-shaped synthetic weights, decode of %d tokens per stream "
      "after BOS, median of %d interleaved rounds (tok/s)\n",
      shape.c_str(), tokens, absl::GetFlag(FLAGS_rounds));
  // Every type's file and engine first, so each round visits them all.
  struct Format {
    std::string name, gguf;
    TensorType type;
    std::unique_ptr<joule::model::Checkpoint> ckpt;
    std::unique_ptr<joule::device::FastEngine> dev;
    std::map<std::string, std::vector<double>> runs;
  };
  std::vector<Format> formats;
  for (absl::string_view type_name :
       absl::StrSplit(absl::GetFlag(FLAGS_types), ',')) {
    Format& f = formats.emplace_back();
    f.name = std::string(type_name);
    f.type = type_name == "q4_0" ? TensorType::kQ4_0 : TensorType::kQ8_0;
    f.gguf = Export(*fp32, tokenizer, f.type,
                    absl::StrCat(shape, "-", type_name, ".gguf"));
    auto ckpt = joule::model::Checkpoint::Open(f.gguf);
    if (!ckpt.ok()) Die(ckpt.status().ToString());
    f.ckpt = *std::move(ckpt);
    joule::device::FastEngine::Options o;
    o.max_batch_size = 64;
    f.dev = std::make_unique<joule::device::FastEngine>(o);
    if (!f.dev->LoadModel(*f.ckpt).ok()) Die("Joule cannot load " + f.gguf);
    JouleDecode(*f.dev, 1, 8);  // Pages the weights in.
  }
  for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
    for (Format& f : formats) {
      for (int b : batches) {
        f.runs[absl::StrCat("joule b", b)].push_back(
            JouleDecode(*f.dev, b, tokens));
        for (int t : threads) {
          f.runs[absl::StrCat("llama.cpp t", t, " b", b)].push_back(
              ParseTokS(LlamaCpp({"decode", f.gguf, std::to_string(t),
                                  std::to_string(b), std::to_string(tokens)})));
        }
      }
      if (!absl::GetFlag(FLAGS_runq).empty() && f.type == TensorType::kQ8_0) {
        f.runs["runq b1"].push_back(
            RunqDecode(Synthetic(shape, 2)->path(), tokenizer, tokens));
      }
    }
  }
  for (Format& f : formats) {
    std::printf("\n%s (%s)\n", f.name.c_str(), f.gguf.c_str());
    for (int b : batches) {
      const double joule = Median(f.runs[absl::StrCat("joule b", b)]);
      double best_peer = 0;
      std::string best_name;
      for (const auto& [name, v] : f.runs) {
        if (name.rfind("joule", 0) == 0) continue;
        if (name.substr(name.rfind(' ') + 1) != absl::StrCat("b", b)) continue;
        const double m = Median(v);
        std::printf("  %-18s %9.1f\n", name.c_str(), m);
        if (m > best_peer) {
          best_peer = m;
          best_name = name;
        }
      }
      std::printf("  %-18s %9.1f   = %.2fx %s\n",
                  absl::StrCat("joule b", b).c_str(), joule,
                  best_peer > 0 ? joule / best_peer : 0, best_name.c_str());
    }
  }
  // Joule's formats against the first (Q8_0 by default), same rounds.
  for (size_t i = 1; i < formats.size(); ++i) {
    for (int b : batches) {
      const std::string key = absl::StrCat("joule b", b);
      std::printf("\njoule %s / %s at b%d: %.2fx", formats[i].name.c_str(),
                  formats[0].name.c_str(), b,
                  Median(formats[i].runs[key]) / Median(formats[0].runs[key]));
    }
  }
  std::printf("\n");
  return 0;
}
