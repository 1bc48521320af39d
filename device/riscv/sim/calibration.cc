#include "device/riscv/sim/calibration.h"

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "device/riscv/sim/iss_engine.h"

namespace joule::riscv {
namespace {

constexpr double kPeakPerCycle = 8 * 4.0;  // 8 cores x 4 fp32 FLOPs.

// One cluster, the memory the largest shape needs, random operands.
struct Bench {
  std::unique_ptr<IssEngine> engine;
  Memory mem;
  Counters counters;

  static absl::StatusOr<Bench> Make(const std::string& image, uint64_t bytes) {
    // One cluster, with its share of HBM in the full system (as when
    // every cluster streams).
    const SimConfig full;
    SimConfig one;
    one.groups = 1;
    one.clusters_per_group = 1;
    one.hbm_bytes_per_second = full.hbm_bytes_per_second / full.clusters();
    auto e = IssEngine::Create(one, image);
    if (!e.ok()) return e.status();
    auto m = Memory::Create(bytes);
    if (!m.ok()) return m.status();
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(-0.1f, 0.1f);
    for (uint64_t i = 0; i < bytes / 4; ++i) m->f32(0)[i] = u(rng);
    return Bench{*std::move(e), *std::move(m), {}};
  }
  absl::StatusOr<double> Utilization(uint32_t kernel,
                                     const std::vector<uint64_t>& args,
                                     double flops) {
    counters = {};
    if (absl::Status s = engine->Run(kernel, args, mem, &counters); !s.ok())
      return s;
    return flops / (kPeakPerCycle * counters.cycles);
  }
};

}  // namespace

absl::StatusOr<double> MeasureGemm(const std::string& image, int rows, int k,
                                   int tokens) {
  const uint64_t w = 0, x = uint64_t{4} * rows * k,
                 y = x + uint64_t{4} * tokens * k;
  auto b = Bench::Make(image, y + uint64_t{4} * tokens * rows + 4096);
  if (!b.ok()) return b.status();
  return b->Utilization(
      kGemm, {w, x, y, uint64_t(rows), uint64_t(k), uint64_t(tokens), 0, 0},
      2.0 * rows * k * tokens);
}

absl::StatusOr<double> MeasureAttention(const std::string& image, int head,
                                        int keys) {
  const uint64_t heads = 8, dim = heads * head, kv = uint64_t{4} * keys * dim;
  const uint64_t q = 0, out = 4 * dim, k = 8 * dim, v = k + kv, desc = v + kv;
  auto b = Bench::Make(image, desc + 4096);
  if (!b.ok()) return b.status();
  const uint64_t d[3] = {k, v, uint64_t(keys)};
  std::memcpy(b->mem.at(desc), d, sizeof(d));
  return b->Utilization(kAttention,
                        {q, dim, out, desc, 1, heads, heads, uint64_t(head), 0},
                        (4.0 * head + 5.0) * heads * keys);
}

absl::StatusOr<double> MeasureElementwise(const std::string& image,
                                          const std::string& kernel) {
  constexpr uint64_t N = 8, D = 768, H = 2048, head = 64;
  auto b = Bench::Make(image, 1 << 20);
  if (!b.ok()) return b.status();
  const uint64_t in = 0, w = 256 << 10, out = 512 << 10, pos = 960 << 10;
  if (kernel == "rmsnorm") {
    return b->Utilization(kRmsNorm, {in, w, out, N, D, 0}, 4.0 * N * D);
  }
  if (kernel == "swiglu") {
    return b->Utilization(kSwiGlu, {in, out, N, H, 0}, 6.0 * N * H);
  }
  if (kernel == "rope") {
    for (uint64_t n = 0; n < N; ++n) {
      const int32_t p = static_cast<int32_t>(7 * n);
      std::memcpy(b->mem.at(pos + 4 * n), &p, 4);
    }
    return b->Utilization(kRope, {in, pos, N, 2 * D, 0, D, D, D, head, 0},
                          6.0 * N * 2 * D);
  }
  return absl::InvalidArgumentError("no elementwise kernel " + kernel);
}

absl::StatusOr<std::string> CalibrateCostTable(const std::string& image,
                                               const std::string& header) {
  std::string out = header;
  absl::StrAppend(&out,
                  "# gemm <rows per cluster> <K> <tokens> <utilization>\n");
  for (int rows : {8, 32, 128, 512, 2048}) {
    for (int k : {64, 256, 1024, 2048}) {
      for (int tokens : {1, 4, 16, 64}) {
        auto u = MeasureGemm(image, rows, k, tokens);
        if (!u.ok()) return u.status();
        absl::StrAppendFormat(&out, "gemm %d %d %d %.4f\n", rows, k, tokens,
                              *u);
      }
    }
  }
  absl::StrAppend(&out, "# attention <head size> <keys> <utilization>\n");
  for (int head : {16, 32, 64, 128}) {
    for (int keys : {16, 64, 256, 1024}) {
      auto u = MeasureAttention(image, head, keys);
      if (!u.ok()) return u.status();
      absl::StrAppendFormat(&out, "attention %d %d %.4f\n", head, keys, *u);
    }
  }
  for (const char* kernel : {"rmsnorm", "swiglu", "rope"}) {
    auto u = MeasureElementwise(image, kernel);
    if (!u.ok()) return u.status();
    absl::StrAppendFormat(&out, "%s %.4f\n", kernel, *u);
  }
  return out;
}

}  // namespace joule::riscv
