// The simulated RISC-V platform's headline figures with its default
// parameters, beside the values Potocnik et al. report (arXiv 2405.19284).
// Every figure here is SIMULATED by Joule's tile-level model.
//   bazel run -c opt //bench:riscv_bench
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/bench_models.h"
#include "device/riscv/riscv_device.h"
#include "device/riscv/sim/cost_table.h"
#include "device/riscv/sim/iss_report.h"
#include "device/riscv/sim/sim_config.h"
#include "device/riscv/sim/tile_model_engine.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, shapes, "stories15M,stories110M",
          "Model shapes to decode.");
ABSL_FLAG(int, tokens, 16, "Decode steps per measurement.");
ABSL_FLAG(int, batch, 8, "Sequences in the batched decode measurement.");
ABSL_FLAG(std::string, riscv_engine, "tile",
          "The simulator's engine for the decode table: tile or iss (the "
          "kernels on the instruction-level simulator; use small --shapes).");
ABSL_FLAG(int, host_threads, 0,
          "The tile model's host threads for the decode table (0: one per "
          "core): host ms/step only.");
ABSL_FLAG(bool, iss, true,
          "Also run the instruction-level simulator's report (iss_report; "
          "about 15 s) and print it beside the tile model and the paper.");

namespace {

using joule::riscv::Counters;
using joule::riscv::Precision;
using joule::riscv::SimConfig;
using joule::riscv::TileModelEngine;

std::string Daemon() {
  if (const char* rf = std::getenv("RUNFILES_DIR")) {
    return std::string(rf) + "/joule/device/riscv/sim/riscv_simd";
  }
  return "device/riscv/sim/riscv_simd";  // bazel run starts in runfiles/joule.
}

// The committed ISS-measured utilizations, as the daemon loads them.
std::optional<joule::riscv::CostTable> CommittedCostTable() {
  std::string path = "device/riscv/sim/cost_table.txt";
  if (const char* rf = std::getenv("RUNFILES_DIR"))
    path = std::string(rf) + "/joule/" + path;
  auto t = joule::riscv::CostTable::Load(path);
  if (!t.ok()) return std::nullopt;
  return *std::move(t);
}

void GemmFigures() {
  std::printf(
      "Large GEMM (2048 x 2048 weights, 512 tokens), default parameters:\n");
  std::printf("  %-5s %10s %12s %12s %10s\n", "prec", "FPU util", "GFLOPS",
              "GFLOPS/W", "power W");
  for (Precision p : {Precision::kFp64, Precision::kFp32, Precision::kFp16,
                      Precision::kFp8}) {
    SimConfig config;
    config.precision = p;
    TileModelEngine engine(config, CommittedCostTable());
    Counters c;
    engine.Charge(engine.GemmWork(2048, 2048, 512, false), &c);
    const double seconds = c.cycles / config.frequency_hz;
    const double flops = c.flops[static_cast<int>(p)];
    std::printf(
        "  %-5s %9.1f%% %12.1f %12.1f %10.2f\n", joule::riscv::PrecisionName(p),
        100.0 * flops / (seconds * config.peak_flops(p)), flops / seconds / 1e9,
        flops / c.energy_joules / 1e9, c.energy_joules / seconds);
  }
  std::printf(
      "  (fp32 at the ISS-measured utilization of cost_table.txt, others at "
      "sim_config.h's constants)\n");
  std::printf("  paper: peak FPU utilization over 79%%, 294 GFLOPS/W\n\n");
}

// The instruction-level simulator's figures (SIMULATED from executed
// kernels) beside the tile model's inputs and the paper's figures.
void IssFigures(double tile_ar, double tile_nar) {
  std::string image = "device/riscv/sim/kernels/kernels.elf";
  if (const char* rf = std::getenv("RUNFILES_DIR"))
    image = std::string(rf) + "/joule/" + image;
  auto r = joule::riscv::RunIssReport(image);
  if (!r.ok()) {
    std::printf("iss_report failed: %s\n", r.status().ToString().c_str());
    return;
  }
  const SimConfig tile;
  std::printf(
      "\nInstruction-level simulator (iss_report), one cluster unless "
      "noted:\n");
  std::printf("  %-36s %12s %12s %14s\n", "figure", "ISS", "tile model",
              "paper");
  for (const auto& g : r->gemm) {
    if (g.m != 64) continue;
    const int p = g.precision == "fp64" ? 0 : 1;
    std::printf("  %-36s %11.1f%% %11.1f%% %14s\n",
                ("GEMM " + g.precision + " 64^3 FPU utilization").c_str(),
                100 * g.fpu_utilization, 100 * tile.gemm_utilization[p],
                "over 79%");
  }
  std::printf("  %-36s %12.1f %12s %14s\n", "GFLOPS/W, fp32 GEMM 64^3",
              r->gflops_per_watt, "-", "294 (FP8)");
  std::printf("  %-36s %12.1f %12s %14s\n", "GFLOPS/W, fp64 GEMM 64^3",
              r->gflops_per_watt_fp64, "-", "28.1 (VLSI)");
  std::printf("  %-36s %11.1fx %11.1fx %14s\n", "speedup, prompt pass (NAR)",
              r->speedup_nar, tile_nar, "16.1x");
  std::printf("  %-36s %11.1fx %11.1fx %14s\n", "speedup, decode step (AR)",
              r->speedup_ar, tile_ar, "up to 35.6x");
  std::printf("  %-36s %12.1f\n", "ISS host speed, MIPS", r->mips);
  std::printf("  JSON: %s\n", joule::riscv::IssReportJson(*r).c_str());
}

struct DecodeResult {
  double tok_per_s = 0, joules_per_token = 0, host_ms_per_step = 0,
         prefill_s = 0;
};

DecodeResult Decode(const joule::model::Checkpoint& ckpt,
                    const std::string& config_file, int batch, int tokens,
                    bool constant_utilizations = false) {
  joule::device::RiscvOptions o;
  o.daemon_binary = Daemon();
  o.daemon_config = config_file;
  o.engine = absl::GetFlag(FLAGS_riscv_engine);
  if (constant_utilizations) o.daemon_flags = {"--cost_table=none"};
  o.max_batch_size = std::max(batch, 1);
  joule::device::RiscvDevice dev(o);
  if (!dev.LoadModel(ckpt).ok()) std::abort();
  joule::device::StepOutput out;
  std::vector<int> prompt(32);
  for (int i = 0; i < 32; ++i) prompt[i] = 1 + (i * 37) % 300;
  std::vector<joule::device::SequenceChunk> pre;
  for (int b = 0; b < batch; ++b) pre.push_back({uint64_t(b + 1), 0, prompt});
  if (!dev.Step(pre, &out).ok()) std::abort();
  DecodeResult r;
  r.prefill_s = absl::ToDoubleSeconds(out.device_time);
  double sim_seconds = 0, joules = 0;
  std::vector<int> tok(batch, 42);
  const absl::Time start = absl::Now();
  for (int step = 0; step < tokens; ++step) {
    std::vector<joule::device::SequenceChunk> dec;
    for (int b = 0; b < batch; ++b)
      dec.push_back(
          {uint64_t(b + 1), 32 + step, absl::MakeConstSpan(&tok[b], 1)});
    if (!dev.Step(dec, &out).ok()) std::abort();
    sim_seconds += absl::ToDoubleSeconds(out.device_time);
    joules += *out.energy_joules;
  }
  r.host_ms_per_step = absl::ToDoubleMilliseconds(absl::Now() - start) / tokens;
  r.tok_per_s = batch * tokens / sim_seconds;
  r.joules_per_token = joules / (batch * tokens);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  std::printf(
      "riscv_bench: SIMULATED figures of Joule's Occamy-like model (24 "
      "clusters x 8 cores, 1 GHz)\n\n");
  GemmFigures();
  // The unoptimized baseline: no SSR/FREP (an FMA every ~8 cycles, as with
  // plain loads and loop overhead), no DMA double buffering, and operands
  // loaded by the cores over the narrow 64-bit interconnect, latency-bound
  // (about 2 B/cycle per cluster) instead of by the 512-bit DMA.
  const std::string baseline = "/tmp/joule_riscv_baseline.cfg";
  FILE* f = std::fopen(baseline.c_str(), "w");
  // On the ISS the baseline is its own kernels (plain loads and loops, no
  // double buffering: double_buffering = 0 selects them); the DMA keeps
  // its port.
  if (absl::GetFlag(FLAGS_riscv_engine) == "iss") {
    std::fprintf(f, "double_buffering = 0\n");
  } else {
    std::fprintf(
        f,
        "gemm_utilization_fp32 = 0.125\nattention_utilization_fp32 = 0.08\n"
        "elementwise_utilization = 0.1\ndouble_buffering = 0\n"
        "dma_bytes_per_cycle = 2\n");
  }
  std::fclose(f);
  // The decode table's configuration: the defaults but for host threads.
  const std::string decode_config = "/tmp/joule_riscv_decode.cfg";
  f = std::fopen(decode_config.c_str(), "w");
  std::fprintf(f, "host_threads = %d\n", absl::GetFlag(FLAGS_host_threads));
  std::fclose(f);
  const int tokens = absl::GetFlag(FLAGS_tokens);
  const int batch = absl::GetFlag(FLAGS_batch);
  std::printf(
      "Decode, fp32, 32-token prompt then %d steps (synthetic weights):\n",
      tokens);
  std::printf("  %-12s %6s %12s %12s %14s %16s\n", "shape", "batch",
              "sim tok/s", "J/token", "host ms/step", "prefill 32 tok");
  double tile_ar = 0, tile_nar = 0;  // Of the last shape.
  for (absl::string_view shape :
       absl::StrSplit(absl::GetFlag(FLAGS_shapes), ',')) {
    auto ckpt = joule::bench::Synthetic(std::string(shape), 0);
    for (int b : {1, batch}) {
      DecodeResult r = Decode(*ckpt, decode_config, b, tokens);
      std::printf("  %-12s %6d %12.1f %12.6f %14.1f %14.3f ms\n",
                  std::string(shape).c_str(), b, r.tok_per_s,
                  r.joules_per_token, r.host_ms_per_step, r.prefill_s * 1e3);
    }
    // The baseline is a set of constants, so both sides use constants
    // here; the ISS's own speedup (below) runs both kernels.
    DecodeResult opt = Decode(*ckpt, "", 1, tokens, true);
    DecodeResult base = Decode(*ckpt, baseline, 1, tokens, true);
    tile_ar = opt.tok_per_s / base.tok_per_s;
    tile_nar = base.prefill_s / opt.prefill_s;
    std::printf(
        "  %-12s speedup over the baseline (%s): decode (AR) %.1fx, prefill "
        "(NAR) %.1fx"
        "   [paper: AR up to 35.6x, NAR 16.1x]\n",
        std::string(shape).c_str(),
        absl::GetFlag(FLAGS_riscv_engine) == "iss"
            ? "ISS, the baseline kernels"
            : "tile model, constant utilizations",
        opt.tok_per_s / base.tok_per_s, base.prefill_s / opt.prefill_s);
  }
  if (absl::GetFlag(FLAGS_iss)) IssFigures(tile_ar, tile_nar);
  return 0;
}
