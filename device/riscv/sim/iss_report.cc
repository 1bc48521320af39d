#include "device/riscv/sim/iss_report.h"

#include <cmath>
#include <cstring>
#include <random>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "device/riscv/sim/iss/kernel_runner.h"
#include "device/riscv/sim/iss_engine.h"
#include "device/riscv/sim/kernels/launch.h"

namespace joule::riscv {
namespace {

std::vector<uint8_t> RandomBytes(size_t count, size_t elem, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<uint8_t> b(count * elem);
  for (size_t i = 0; i < count; ++i) {
    if (elem == 8) {
      const double v = u(rng);
      std::memcpy(&b[i * 8], &v, 8);
    } else {
      const float v = u(rng);
      std::memcpy(&b[i * 4], &v, 4);
    }
  }
  return b;
}

// One optimized GEMM of size^3 on one cluster.
absl::StatusOr<iss::KernelImage::Result> RunGemm(const iss::KernelImage& img,
                                                 uint32_t kernel, int size,
                                                 size_t elem) {
  std::mt19937 rng(7);
  const uint32_t bytes = uint32_t(size) * size * elem;
  const uint32_t a = img.heap_base(), b = a + ((bytes + 63) & ~63u),
                 c = b + ((bytes + 63) & ~63u);
  const uint32_t n = size;
  return img.Launch(kernel, {n, n, n, a, b, c},
                    {{a, RandomBytes(size_t(n) * n, elem, rng)},
                     {b, RandomBytes(size_t(n) * n, elem, rng)}},
                    {});
}

uint64_t Instructions(const iss::ClusterRun& run) {
  uint64_t n = 0;
  for (const iss::CoreCounters& c : run.cores) n += c.instructions;
  return n;
}

// One decoder layer of `tokens` tokens after `past` cached positions
// through the protocol's kernels, as the RISC-V driver launches them.
struct LayerRun {
  uint64_t cycles = 0, instructions = 0;
};
absl::StatusOr<LayerRun> DecoderLayer(const std::string& image, bool optimized,
                                      uint64_t tokens, uint64_t past) {
  constexpr uint64_t D = 288, H = 768, heads = 6, hs = D / heads, S = 3 * D;
  SimConfig config;
  config.double_buffering = optimized;  // Off: the *_BASE kernels.
  config.hbm_bytes = 64 << 20;
  auto engine = IssEngine::Create(config, image);
  if (!engine.ok()) return engine.status();
  auto mem = Memory::Create(config.hbm_bytes);
  if (!mem.ok()) return mem.status();
  uint64_t next = 0;
  auto alloc = [&](uint64_t floats) {
    const uint64_t a = next;
    next += (floats * 4 + 63) & ~uint64_t{63};
    return a;
  };
  const uint64_t ctx = past + tokens;
  const uint64_t x = alloc(tokens * D), xb = alloc(tokens * D),
                 qkv = alloc(tokens * S), att = alloc(tokens * D),
                 h13 = alloc(tokens * 2 * H), hb = alloc(tokens * H),
                 wqkv = alloc(S * D), wo = alloc(D * D), w13 = alloc(2 * H * D),
                 w2 = alloc(D * H), rms = alloc(D), kc = alloc(ctx * D),
                 vc = alloc(ctx * D), pos = alloc(tokens),
                 desc = alloc(6 * tokens), copies = alloc(12 * tokens);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-0.06f, 0.06f);
  for (uint64_t i = 0; i < next / 4; ++i) mem->f32(0)[i] = u(rng);
  for (uint64_t t = 0; t < tokens; ++t) {
    const int32_t p = static_cast<int32_t>(past + t);
    std::memcpy(mem->at(pos + 4 * t), &p, 4);
    const uint64_t d[3] = {kc, vc, past + t + 1};
    std::memcpy(mem->at(desc + 24 * t), d, 24);
    const uint64_t c[6] = {
        qkv + (t * S + D) * 4,     kc + (past + t) * D * 4, D * 4,
        qkv + (t * S + 2 * D) * 4, vc + (past + t) * D * 4, D * 4};
    std::memcpy(mem->at(copies + 48 * t), c, 48);
  }
  const std::vector<std::pair<uint32_t, std::vector<uint64_t>>> launches = {
      {kRmsNorm, {x, rms, xb, tokens, D, 0}},
      {kGemm, {wqkv, xb, qkv, S, D, tokens, 0, 0}},
      {kRope, {qkv, pos, tokens, S, 0, D, D, D, hs, 0}},
      {kCopy, {copies, 2 * tokens, 0}},
      {kAttention, {qkv, S, att, desc, tokens, heads, heads, hs, 0}},
      {kGemm, {wo, att, x, D, D, tokens, 1, 0}},
      {kRmsNorm, {x, rms, xb, tokens, D, 0}},
      {kGemm, {w13, xb, h13, 2 * H, D, tokens, 0, 0}},
      {kSwiGlu, {h13, hb, tokens, H, 0}},
      {kGemm, {w2, hb, x, D, H, tokens, 1, 0}},
  };
  Counters c;
  for (const auto& [kernel, args] : launches) {
    if (absl::Status s = (*engine)->Run(kernel, args, *mem, &c); !s.ok())
      return s;
  }
  return LayerRun{c.cycles, (*engine)->instructions_simulated()};
}

}  // namespace

absl::StatusOr<iss::EnergyModel> CalibrateEnergy(const std::string& image) {
  auto img = iss::KernelImage::FromFile(image);
  if (!img.ok()) return img.status();
  auto r = RunGemm(*img, JOULE_GEMM_FP64_OPT, 64, 8);
  if (!r.ok()) return r.status();
  return iss::Calibrate(iss::EnergyModel(), r->run);
}

absl::StatusOr<IssReport> RunIssReport(const std::string& image) {
  auto img = iss::KernelImage::FromFile(image);
  if (!img.ok()) return img.status();
  const iss::EnergyModel energy = iss::CalibratedEnergyModel();
  IssReport report;
  uint64_t instructions = 0;
  const absl::Time start = absl::Now();
  for (auto [name, kernel, elem] :
       {std::make_tuple("fp64", JOULE_GEMM_FP64_OPT, size_t{8}),
        std::make_tuple("fp32", JOULE_GEMM_FP32_OPT, size_t{4})}) {
    for (int size : {16, 32, 64}) {
      auto r = RunGemm(*img, kernel, size, elem);
      if (!r.ok()) return r.status();
      IssGemmFigure g;
      g.precision = name;
      g.m = g.n = g.k = size;
      g.cycles = r->run.cycles;
      uint64_t busy = 0;
      for (int i = 0; i < 8; ++i) busy += r->run.cores[i].fpu_busy;
      g.fpu_utilization = double(busy) / (8.0 * g.cycles);
      const double flops = 2.0 * size * size * size;
      g.gflops = flops / g.cycles;  // Per cycle at 1 GHz = GFLOP/s.
      const iss::EnergyEvents e = iss::CountEvents(r->run);
      g.gflops_per_watt = flops / energy.Joules(e, g.cycles, 1) / 1e9;
      instructions += Instructions(r->run);
      report.gemm.push_back(g);
    }
    (elem == 8 ? report.gflops_per_watt_fp64 : report.gflops_per_watt) =
        report.gemm.back().gflops_per_watt;
  }
  for (int opt = 0; opt < 2; ++opt) {
    auto nar = DecoderLayer(image, opt == 1, 64, 0);
    if (!nar.ok()) return nar.status();
    auto ar = DecoderLayer(image, opt == 1, 1, 64);
    if (!ar.ok()) return ar.status();
    report.nar_cycles[1 - opt] = nar->cycles;
    report.ar_cycles[1 - opt] = ar->cycles;
    instructions += nar->instructions + ar->instructions;
  }
  report.speedup_nar = double(report.nar_cycles[1]) / report.nar_cycles[0];
  report.speedup_ar = double(report.ar_cycles[1]) / report.ar_cycles[0];
  report.mips = instructions / absl::ToDoubleSeconds(absl::Now() - start) / 1e6;
  return report;
}

std::string IssReportJson(const IssReport& r) {
  std::vector<std::string> gemm;
  for (const IssGemmFigure& g : r.gemm) {
    gemm.push_back(absl::StrFormat(
        "{\"precision\":\"%s\",\"m\":%d,\"n\":%d,\"k\":%d,\"cycles\":%d,"
        "\"fpu_utilization\":%.4f,\"gflops\":%.3f}",
        g.precision, g.m, g.n, g.k, g.cycles, g.fpu_utilization, g.gflops));
  }
  return absl::StrFormat(
      "{\"source\":\"simulated\",\"gemm\":[%s],\"speedup\":{\"nar\":%.2f,"
      "\"ar\":%.2f},\"decoder_layer_cycles\":{\"nar\":{\"optimized\":%d,"
      "\"baseline\":%d},\"ar\":{\"optimized\":%d,\"baseline\":%d}},"
      "\"gflops_per_watt\":%.2f,\"gflops_per_watt_fp64\":%.2f,\"mips\":%.1f}",
      absl::StrJoin(gemm, ","), r.speedup_nar, r.speedup_ar, r.nar_cycles[0],
      r.nar_cycles[1], r.ar_cycles[0], r.ar_cycles[1], r.gflops_per_watt,
      r.gflops_per_watt_fp64, r.mips);
}

}  // namespace joule::riscv
