// The ISS engine against the tile model (which computes each kernel the
// reference engine's way): the same launches on the same memory, results
// within float tolerance, and counters from what the clusters ran.
#include "device/riscv/sim/iss_engine.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "device/riscv/sim/iss_report.h"
#include "device/riscv/sim/tile_model_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_paths.h"

namespace joule::riscv {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kHbm = 64u << 20;

std::unique_ptr<IssEngine> Iss(SimConfig config = {}) {
  auto e = IssEngine::Create(
      config, testing::Runfile("device/riscv/sim/kernels/kernels.elf"));
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *std::move(e) : nullptr;
}

// Two copies of one memory, filled with the same random floats.
struct Twin {
  Memory tile = *Memory::Create(kHbm);
  Memory iss = *Memory::Create(kHbm);
  std::mt19937 rng{5};
  void Fill(uint64_t addr, uint64_t floats) {
    std::uniform_real_distribution<float> u(-1, 1);
    for (uint64_t i = 0; i < floats; ++i) {
      const float v = u(rng);
      tile.f32(addr)[i] = v;
      iss.f32(addr)[i] = v;
    }
  }
  void Put(uint64_t addr, const void* p, uint64_t bytes) {
    ASSERT_TRUE(tile.Write(addr, p, bytes).ok());
    ASSERT_TRUE(iss.Write(addr, p, bytes).ok());
  }
  // The largest difference over `floats` at addr.
  double Diff(uint64_t addr, uint64_t floats) {
    double worst = 0;
    for (uint64_t i = 0; i < floats; ++i)
      worst = std::max<double>(worst,
                               std::fabs(tile.f32(addr)[i] - iss.f32(addr)[i]));
    return worst;
  }
};

struct Ran {
  Counters tile, iss;
};
Ran RunBoth(Twin& m, uint32_t kernel, const std::vector<uint64_t>& args) {
  Ran r;
  TileModelEngine tile({});
  EXPECT_TRUE(tile.Run(kernel, args, m.tile, &r.tile).ok());
  auto iss = Iss();
  absl::Status s = iss->Run(kernel, args, m.iss, &r.iss);
  EXPECT_TRUE(s.ok()) << s;
  return r;
}

TEST(IssEngineTest, GemmAccumulatesAndChargesWhatTheClustersRan) {
  // 300 rows over 24 clusters, 70 tokens (two token blocks), even K.
  const uint64_t M = 300, K = 96, N = 70, W = 0, X = 1 << 20, Y = 2 << 20;
  for (bool acc : {false, true}) {
    Twin m;
    m.Fill(W, M * K);
    m.Fill(X, N * K);
    m.Fill(Y, N * M);
    Ran r = RunBoth(m, kGemm, {W, X, Y, M, K, N, acc, 0});
    EXPECT_LT(m.Diff(Y, N * M), 1e-5 * K) << acc;
    // Beyond the products' 2MKN, the kernel's lane and accumulator
    // reductions (4 vfsum.s of 2 FLOPs per output) and the accumulation.
    EXPECT_EQ(r.iss.flops[1], 2 * M * K * N + 8 * M * N + (acc ? M * N : 0));
    EXPECT_GT(r.iss.cycles, 0u);
    EXPECT_GE(r.iss.dma_bytes, (M * K + N * K + N * M) * 4);
    EXPECT_GT(r.iss.energy_joules, 0);
    EXPECT_EQ(r.iss.launches, 1u);
    std::printf("GEMM %llux%llux%llu acc %d: ISS %llu cycles, tile %llu\n",
                (unsigned long long)M, (unsigned long long)K,
                (unsigned long long)N, acc, (unsigned long long)r.iss.cycles,
                (unsigned long long)r.tile.cycles);
  }
}

TEST(IssEngineTest, GemmOverKBeyondOneTileRunsInSlicesOnOneCluster) {
  // K = 2600: slices of 1024, 1024 and 552, accumulating on one cluster.
  const uint64_t M = 40, K = 2600, N = 3, X = 1 << 20, Y = 2 << 20;
  Twin m;
  m.Fill(0, M * K);
  m.Fill(X, N * K);
  m.Fill(Y, N * M);
  Ran r = RunBoth(m, kGemm, {0, X, Y, M, K, N, 1, 0});
  EXPECT_LT(m.Diff(Y, N * M), 1e-5 * K);
  EXPECT_GT(r.iss.cycles, 0u);
}

TEST(IssEngineTest, MoreClustersFinishSooner) {
  const uint64_t M = 512, K = 64, N = 1, X = 1 << 20, Y = 2 << 20;
  Twin m;
  m.Fill(0, M * K);
  m.Fill(X, K);
  SimConfig one;  // One of the 24, with its share of HBM.
  one.groups = 1;
  one.clusters_per_group = 1;
  one.hbm_bytes_per_second = SimConfig().hbm_bytes_per_second / 24;
  Counters c1, c24;
  ASSERT_TRUE(Iss(one)->Run(kGemm, {0, X, Y, M, K, N, 0, 0}, m.iss, &c1).ok());
  ASSERT_TRUE(Iss()->Run(kGemm, {0, X, Y, M, K, N, 0, 0}, m.iss, &c24).ok());
  EXPECT_EQ(c1.flops[1], c24.flops[1]);
  EXPECT_LT(c24.cycles * 4, c1.cycles);
}

TEST(IssEngineTest, ElementwiseKernelsMatchTheReference) {
  const uint64_t N = 5, D = 64, H = 48, base = 0, w = 1 << 20, out = 2 << 20;
  Twin m;
  m.Fill(base, N * D);
  m.Fill(w, D);
  RunBoth(m, kRmsNorm, {base, w, out, N, D, 0});
  EXPECT_LT(m.Diff(out, N * D), 1e-5);

  m.Fill(base, N * 2 * H);
  RunBoth(m, kSwiGlu, {base, out, N, H, 0});
  EXPECT_LT(m.Diff(out, N * H), 1e-5);  // The kernels' own expf.

  // q (dim 64) and k (kv_dim 32) of rows 128 floats apart, head 16.
  const uint64_t positions = 3 << 20, stride = 128;
  m.Fill(base, N * stride);
  const int32_t pos[N] = {0, 1, 7, 100, 511};
  m.Put(positions, pos, sizeof(pos));
  RunBoth(m, kRope, {base, positions, N, stride, 0, 64, 64, 32, 16, 0});
  EXPECT_LT(m.Diff(base, N * stride), 1e-5);
}

TEST(IssEngineTest, AttentionOverPromptsAndDecodes) {
  // Two sequences: one prompt of 6 queries at positions 4..9 and one
  // decode query with 20 keys. heads 4, kv_heads 2, head 16.
  const uint64_t heads = 4, kvh = 2, hs = 16, dim = heads * hs, kv = kvh * hs,
                 N = 7, stride = 96;
  const uint64_t q = 0, out = 1 << 20, k0 = 2 << 20, v0 = 3 << 20, k1 = 4 << 20,
                 v1 = 5 << 20, desc = 6 << 20;
  Twin m;
  m.Fill(q, N * stride);
  for (uint64_t a : {k0, v0, k1, v1}) m.Fill(a, 20 * kv);
  std::vector<uint64_t> d;
  for (uint64_t i = 0; i < 6; ++i) d.insert(d.end(), {k0, v0, 5 + i});
  d.insert(d.end(), {k1, v1, 20});
  m.Put(desc, d.data(), d.size() * 8);
  Ran r = RunBoth(m, kAttention, {q, stride, out, desc, N, heads, kvh, hs, 0});
  EXPECT_LT(m.Diff(out, N * dim), 1e-5);
  EXPECT_GT(r.iss.flops[1], 0u);
}

TEST(IssEngineTest, CopiesInOrderEvenWhenOneReadsAnEarlierWrite) {
  Twin m;
  m.Fill(0, 4096);
  // b <- a, then c <- b: the second must see the first's result.
  const uint64_t a = 0, b = 8192, c = 16384, desc = 1 << 20;
  const uint64_t d[6] = {a, b, 1000, b, c, 1000};
  m.Put(desc, d, sizeof(d));
  Ran r = RunBoth(m, kCopy, {desc, 2, 0});
  EXPECT_EQ(std::memcmp(m.iss.at(c), m.iss.at(a), 1000), 0);
  EXPECT_EQ(m.Diff(0, 8192), 0);
  // Each byte read and written once by the DMA; the cores' own DRAM loads
  // (the launch descriptor, the copy list) add a few hundred bytes.
  EXPECT_GE(r.iss.dma_bytes, 4000u);
  EXPECT_LT(r.iss.dma_bytes, 4000u + 1024);
}

TEST(IssEngineTest, ASelfOverlappingCopyActsAsMemmoveBeyondOnePiece) {
  // 3 MiB moved 4 bytes up: three 1 MiB pieces, each of which must read
  // the source as it was before the copy.
  const uint64_t n = 3u << 20;
  Twin m;
  m.Fill(0, n / 4 + 1);
  const uint64_t d[3] = {0, 4, n}, desc = 8u << 20;
  m.Put(desc, d, sizeof(d));
  RunBoth(m, kCopy, {desc, 1, 0});
  EXPECT_EQ(std::memcmp(m.iss.at(0), m.tile.at(0), n + 4), 0);
}

TEST(IssEngineTest, RefusesWorkBeyondItsLimitsBeforeTouchingMemory) {
  auto iss = Iss();
  Memory mem = *Memory::Create(kHbm);
  Counters c;
  // 2048 x 2048 x 1024 multiply-adds fit HBM but would take the ISS hours.
  Memory big = *Memory::Create(uint64_t{64} << 30);
  absl::Status s = iss->Run(
      kGemm, {0, 16u << 20, 32u << 20, 2048, 2048, 1024, 0, 0}, big, &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("multiply-adds exceed the ISS engine's"));
  // A copy of more bytes than it stages per launch.
  const uint64_t d[3] = {0, 512u << 20, 300u << 20};
  ASSERT_TRUE(big.Write(uint64_t{8} << 30, d, sizeof(d)).ok());
  s = iss->Run(kCopy, {8ull << 30, 1, 0}, big, &c);
  EXPECT_THAT(s.message(), HasSubstr("COPY"));
  EXPECT_THAT(s.message(), HasSubstr("bytes exceed"));
  EXPECT_EQ(c.launches, 0u);
  // A configuration whose cluster the kernels were not written for.
  SimConfig four;
  four.cores_per_cluster = 4;
  auto bad = IssEngine::Create(
      four, testing::Runfile("device/riscv/sim/kernels/kernels.elf"));
  EXPECT_THAT(bad.status().message(),
              HasSubstr("snitch_cluster's default cluster"));
}

TEST(IssEngineTest, RefusesWhatTheKernelsCannotRunByName) {
  auto iss = Iss();
  Memory mem = *Memory::Create(kHbm);
  Counters c;
  EXPECT_THAT(
      iss->Run(kGemm, {0, 1 << 20, 2 << 20, 8, 63, 1, 0, 0}, mem, &c).message(),
      HasSubstr("takes an even K"));
  const uint64_t desc[3] = {3 << 20, 4 << 20, 1};
  ASSERT_TRUE(mem.Write(5 << 20, desc, sizeof(desc)).ok());
  EXPECT_THAT(iss->Run(kAttention, {0, 1024, 1 << 20, 5 << 20, 1, 2, 1, 512, 0},
                       mem, &c)
                  .message(),
              HasSubstr("heads of at most 256"));
  // The arguments are checked as the tile model checks them.
  EXPECT_THAT(iss->Run(kGemm, {0, 0, kHbm, 8, 8, 1, 0, 0}, mem, &c).message(),
              HasSubstr("GEMM"));
  EXPECT_EQ(c.launches, 0u);
  SimConfig fp16;
  fp16.precision = Precision::kFp16;
  auto bad = IssEngine::Create(
      fp16, testing::Runfile("device/riscv/sim/kernels/kernels.elf"));
  EXPECT_THAT(bad.status().message(), HasSubstr("fp32"));
}

}  // namespace
}  // namespace joule::riscv

namespace joule::riscv {
namespace {

std::string Image() {
  return testing::Runfile("device/riscv/sim/kernels/kernels.elf");
}

TEST(IssEnergyTest, TheCommittedCalibrationIsCurrent) {
  // Re-fits the energy model to its reference run: a change to the ISS's
  // timing or counting that moves it by over 1% must be re-calibrated
  // (iss_report --calibrate) and committed.
  auto fitted = CalibrateEnergy(Image());
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  const iss::EnergyModel committed = iss::CalibratedEnergyModel();
  EXPECT_NEAR(fitted->joules_per_pj / committed.joules_per_pj, 1.0, 0.01);
  EXPECT_DOUBLE_EQ(fitted->cluster_cycle_joules,
                   committed.cluster_cycle_joules);
}

TEST(IssEnergyTest, CountsEveryEventAtItsEnergy) {
  iss::EnergyModel m;
  m.joules_per_pj = 2e-12;
  m.cluster_cycle_joules = 1e-10;
  m.hbm_byte_joules = 3e-11;
  iss::EnergyEvents e;
  e.flops_fp32 = 10;    // 23 pJ
  e.flops_fp64 = 1;     // 9.2
  e.instructions = 5;   // 10
  e.fpu_issues = 4;     // 4
  e.tcdm_accesses = 2;  // 20
  e.dma_bytes = 16;     // 20
  e.dram_accesses = 1;  // 10
  e.hbm_bytes = 100;
  EXPECT_DOUBLE_EQ(m.RelativePj(e), 96.2);
  EXPECT_DOUBLE_EQ(m.Joules(e, 1000, 3),
                   96.2 * 2e-12 + 100 * 3e-11 + 1e-10 * 1000 * 3);
}

TEST(IssReportTest, ReportsEveryFigureFromWhatRan) {
  if (std::getenv("JOULE_SANITIZED") != nullptr) {
    GTEST_SKIP() << "about 15 s optimized; the normal pass runs it";
  }
  auto r = RunIssReport(Image());
  ASSERT_TRUE(r.ok()) << r.status();
  auto j = nlohmann::json::parse(IssReportJson(*r));
  ASSERT_EQ(j["gemm"].size(), 6u);
  double last[2] = {0, 0};
  for (const auto& g : j["gemm"]) {
    const int p = g["precision"] == "fp64" ? 0 : 1;
    EXPECT_GT(g["fpu_utilization"].get<double>(), last[p]);
    EXPECT_LT(g["fpu_utilization"].get<double>(), 1.0);
    EXPECT_GT(g["cycles"].get<uint64_t>(), 0u);
    EXPECT_GT(g["gflops"].get<double>(), 0);
    last[p] = g["fpu_utilization"];
  }
  EXPECT_GT(j["speedup"]["nar"].get<double>(), 1.0);
  EXPECT_GT(j["speedup"]["ar"].get<double>(), 1.0);
  EXPECT_GT(j["gflops_per_watt"].get<double>(), 0);
  EXPECT_GT(j["mips"].get<double>(), 0);
  EXPECT_EQ(j["source"], "simulated");
  std::printf("%s\n", IssReportJson(*r).c_str());
}

}  // namespace
}  // namespace joule::riscv
