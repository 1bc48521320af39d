// The fast CPU engine against the memory-bandwidth roofline measured in the
// same run: batch-1 decode, aggregate decode at 1/4/16/32 sequences and
// 256-token prefill, on stories15M- and stories110M-shaped synthetic
// checkpoints, fp32 (v0) and int8 (v2).
//   bazel run -c opt //bench:cpu_engine_bench [-- --shapes=stories110M
//   --versions=2]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/bandwidth.h"
#include "bench/bench_models.h"
#include "device/cpu/fast_engine.h"
#include "device/cpu/kernels.h"
#include "device/cpu/packed_weights.h"
#include "device/cpu/thread_pool.h"
#include "model/sampler.h"

ABSL_FLAG(std::string, shapes, "stories15M,stories110M", "Shapes.");
ABSL_FLAG(std::string, versions, "0,2", "Checkpoint versions.");
ABSL_FLAG(std::string, batches, "1,4,16,32", "Aggregate decode batch sizes.");
ABSL_FLAG(int, decode_steps, 64, "Decode steps per measurement.");
ABSL_FLAG(int, repeats, 3,
          "Decode and prefill figures are the best of this many runs, and "
          "% roof the median run against the bandwidth measured beside it: "
          "this machine's bandwidth moves by tens of percent from second to "
          "second.");
ABSL_FLAG(int, profile_batch, 0,
          "If > 0: only decode this many sequences for --decode_steps, "
          "repeatedly for --profile_seconds (a steady state for perf).");
ABSL_FLAG(double, profile_seconds, 10, "See --profile_batch.");
ABSL_FLAG(std::string, isa, "",
          "Kernels: avx512vnni, avx2 or generic (default: the best this CPU "
          "has).");
ABSL_FLAG(std::string, kv_cache, "int8",
          "KV cache entries of int8 checkpoints: int8 or fp16.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  joule::cpu::ThreadPool pool(0);
  // The bandwidth a shared VM gives swings by up to 2x within seconds, so
  // it is measured again around every batch-1 run: the roofline column is
  // the best seen so far, and % roof sets each run against the bandwidth
  // measured beside it (each a best of three, so it errs low).
  double bw = 0;
  if (absl::GetFlag(FLAGS_profile_batch) == 0) {
    const joule::bench::Bandwidth m = joule::bench::MeasureBandwidth(pool, 10);
    bw = m.best();
    std::printf(
        "cpu_engine_bench: %d threads; memory read bandwidth (measured now, "
        "best of 10): %.1f GB/s with %s loads on the engine's pool, %.1f "
        "GB/s with an OpenMP STREAM-like sum on %d threads\n\n",
        pool.size(), m.simd / 1e9, m.simd_isa.c_str(), m.openmp / 1e9,
        m.openmp_threads);
  }
  std::vector<int> batches;
  for (absl::string_view b :
       absl::StrSplit(absl::GetFlag(FLAGS_batches), ',')) {
    batches.push_back(std::stoi(std::string(b)));
  }
  std::printf("%-12s %3s %-10s %9s %9s %7s", "shape", "v", "isa", "b1 tok/s",
              "roofline", "% roof");
  for (int b : batches) std::printf(" %9s", absl::StrCat("agg@", b).c_str());
  std::printf(" %11s\n", "prefill256");
  const int steps = absl::GetFlag(FLAGS_decode_steps);
  for (absl::string_view shape :
       absl::StrSplit(absl::GetFlag(FLAGS_shapes), ',')) {
    for (absl::string_view v :
         absl::StrSplit(absl::GetFlag(FLAGS_versions), ',')) {
      const int version = std::stoi(std::string(v));
      auto ckpt = joule::bench::Synthetic(std::string(shape), version);
      const joule::model::Config& c = ckpt->config();
      joule::device::FastEngine::Options o;
      o.max_batch_size = 64;
      o.isa = absl::GetFlag(FLAGS_isa);
      o.kv_cache = absl::GetFlag(FLAGS_kv_cache);
      joule::device::FastEngine dev(o);
      if (absl::Status s = dev.LoadModel(*ckpt); !s.ok()) {
        std::fprintf(stderr, "%s\n", s.ToString().c_str());
        return 1;
      }
      // Bytes a decode step must read: every weight once (the shared
      // classifier is the embedding), plus the KV cache it attends over.
      const double weight_bytes =
          version == 0 ? 4.0 * c.ParameterCount()
                       : c.ParameterCount() * (1.0 + 4.0 / ckpt->group_size());
      // The cache as the engine stores it (int8 or fp16 entries for int8
      // models), at the run's mean length.
      const double kv_bytes = dev.kv_bytes_per_token() * (steps / 2.0);
      const double step_bytes = weight_bytes + kv_bytes;
      joule::device::StepOutput out;
      uint64_t next_seq = 1;
      auto decode = [&](int batch) {
        std::vector<std::vector<int>> toks(batch, std::vector<int>{1});
        std::vector<uint64_t> ids(batch);
        for (auto& id : ids) id = next_seq++;
        const absl::Time t0 = absl::Now();
        for (int pos = 0; pos < steps; ++pos) {
          std::vector<joule::device::SequenceChunk> chunks;
          for (int b = 0; b < batch; ++b)
            chunks.push_back({ids[b], pos, toks[b]});
          if (!dev.Step(chunks, &out).ok()) std::abort();
          for (int b = 0; b < batch; ++b)
            toks[b][0] = joule::model::Argmax(out.row(b));
        }
        const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
        for (uint64_t id : ids) dev.Release(id);
        return batch * steps / secs;
      };
      if (const int pb = absl::GetFlag(FLAGS_profile_batch); pb > 0) {
        const absl::Time end =
            absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_profile_seconds));
        while (absl::Now() < end) {
          std::printf("%s v%d: %d sequences: %.1f tok/s\n",
                      std::string(shape).c_str(), version, pb, decode(pb));
        }
        continue;
      }
      const int repeats = std::max(1, absl::GetFlag(FLAGS_repeats));
      auto best = [&](auto run) {
        double b = 0;
        for (int r = 0; r < repeats; ++r) b = std::max(b, run());
        return b;
      };
      decode(1);  // Warm up: page in the weights.
      // Each batch-1 run against the bandwidth measured just before and
      // just after it: the VM's bandwidth moves within seconds, and a run
      // set against the best of the whole run read as low as 75% of
      // roofline while the runs beside it read 89%.
      std::vector<double> shares;
      double b1 = 0;
      double before = joule::bench::MeasureBandwidth(pool, 3).best();
      for (int r = 0; r < repeats; ++r) {
        const double tps = decode(1);
        const double after = joule::bench::MeasureBandwidth(pool, 3).best();
        bw = std::max({bw, before, after});
        b1 = std::max(b1, tps);
        shares.push_back(tps * step_bytes / (0.5 * (before + after)));
        before = after;
      }
      std::sort(shares.begin(), shares.end());
      const double share = shares[shares.size() / 2];
      const double roofline = bw / step_bytes;
      std::vector<double> agg;
      for (int b : batches)
        agg.push_back(b == 1 ? b1 : best([&] { return decode(b); }));
      const int plen = std::min(256, c.seq_len - 1);
      std::vector<int> prompt(plen);
      for (int i = 0; i < plen; ++i) prompt[i] = 1 + (i * 31) % 1000;
      const double prefill = best([&] {
        const absl::Time t0 = absl::Now();
        if (!dev.Step({{next_seq, 0, prompt}}, &out).ok()) std::abort();
        const double tps = plen / absl::ToDoubleSeconds(absl::Now() - t0);
        dev.Release(next_seq++);
        return tps;
      });
      std::printf("%-12s %3d %-10s %9.1f %9.1f %6.0f%%",
                  std::string(shape).c_str(), version, dev.isa().c_str(), b1,
                  roofline, 100 * share);
      for (double a : agg) std::printf(" %9.1f", a);
      std::printf(" %11.1f\n", prefill);
      std::fflush(stdout);
    }
  }
  std::printf(
      "\nroofline: the best memory read bandwidth measured so far in "
      "this run, by either method (%.1f GB/s at the end); %% roof: the "
      "median batch-1 run's tok/s over the roofline of the bandwidth "
      "measured just before and after it\n",
      bw / 1e9);
  return 0;
}
