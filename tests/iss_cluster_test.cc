// One simulated Snitch cluster running cross-compiled programs
// (tests/riscv_cluster): the barrier, SSR streams of 1, 2 and 4
// dimensions with repetition, FREP with stagger, packed singles, and the
// cycle counts a hand calculation from ClusterConfig predicts; and what
// the cluster refuses, each refusal named in the run's error.
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "device/riscv/sim/iss/cluster.h"
#include "device/riscv/sim/iss/ssr.h"
#include "gtest/gtest.h"
#include "tests/cluster_run_compare.h"
#include "tests/riscv_cluster/refusals.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

using ::joule::testing::ExpectSameRun;

struct Result {
  iss::ClusterRun run;
  std::vector<uint32_t> words;
};

std::vector<uint8_t> ReadElf(const std::string& name) {
  std::ifstream in(testing::Runfile("tests/riscv_cluster/" + name + ".elf"),
                   std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), {});
}

Result RunProgram(const std::string& name, iss::ClusterConfig cfg = {}) {
  iss::Cluster cluster(cfg);
  Result r;
  if (absl::Status s = cluster.Load(ReadElf(name)); !s.ok()) {
    ADD_FAILURE() << s;
    return r;
  }
  r.run = cluster.Run(uint64_t{1} << 24);
  EXPECT_TRUE(r.run.ok) << r.run.error;
  r.words.resize(r.run.out.size() / 4);
  std::memcpy(r.words.data(), r.run.out.data(), r.words.size() * 4);
  return r;
}

uint64_t Word64(const std::vector<uint32_t>& w, size_t i) {
  return uint64_t{w[i + 1]} << 32 | w[i];
}

TEST(IssClusterTest, BarrierReleasesEveryCoreAtTheLastArrival) {
  Result r = RunProgram("barrier");
  ASSERT_EQ(r.words.size(), 19u);
  const iss::ClusterConfig cfg;
  uint32_t last = 0;
  for (int i = 0; i < 9; ++i) {
    last = std::max(last, r.words[i]);
    // Core i did 40 * i loop iterations first: later arrivals.
    if (i > 0) EXPECT_GT(r.words[i], r.words[i - 1]);
  }
  for (int i = 0; i < 9; ++i) {
    // Every core reads the same cycle right after the barrier: the last
    // arrival's (its rdcycle, store and barrier access: 3 instructions
    // after its "before") plus the release latency.
    EXPECT_EQ(r.words[9 + i], r.words[9]);
  }
  EXPECT_GE(r.words[9], last + cfg.barrier_latency);
  EXPECT_LE(r.words[9], last + cfg.barrier_latency + 6);
  EXPECT_EQ(r.words[18], 204u);  // The squares 0..64 written before.
  for (int code : r.run.exit_codes) EXPECT_EQ(code, 0);
}

TEST(IssClusterTest, SsrFrepDotProductsMatchAndTakeThePredictedCycles) {
  Result r = RunProgram("ssr_frep");
  ASSERT_EQ(r.words.size(), 3u * 3 + 4 + 48);
  const iss::ClusterConfig cfg;
  // Results equal C's fma in the same order (one accumulator; four).
  EXPECT_EQ(Word64(r.words, 0), Word64(r.words, 9));
  EXPECT_EQ(Word64(r.words, 3), Word64(r.words, 11));
  EXPECT_EQ(Word64(r.words, 6), Word64(r.words, 11));
  const uint32_t one = r.words[2], four = r.words[5], same_bank = r.words[8];
  // One accumulator: each fmadd.d waits for the last, lat_fp64 apart.
  EXPECT_GE(one, 64u * cfg.lat_fp64);
  EXPECT_LE(one, 64u * cfg.lat_fp64 + 8);
  // Four (stagger 3 on rd and rs3) cover the latency: one per cycle.
  EXPECT_GE(four, 64u);
  EXPECT_LE(four, 64u + 8);
  // Both streams in one bank: the second read waits a cycle each time.
  EXPECT_GE(same_bank, 128u);
  EXPECT_LE(same_bank, 128u + 8);
  const iss::CoreCounters& c0 = r.run.cores[0];
  EXPECT_GE(c0.tcdm_conflicts, 64u);
  // 63 repeats of each dot's body, 15 of each stream copy's.
  EXPECT_EQ(c0.frep_repeats, 3u * 63 + 3 * 15);
  EXPECT_LT(c0.fpu_busy, c0.cycles);
  // The 4 x 4 block at row 2, column 3 of an 8 x 8 matrix of 0..63.
  for (int i = 0; i < 16; ++i)
    EXPECT_EQ(r.words[13 + i], uint32_t((2 + i / 4) * 8 + 3 + i % 4)) << i;
  // Each element delivered twice, doubled.
  for (int i = 0; i < 16; ++i) EXPECT_EQ(r.words[29 + i], uint32_t(i / 2 * 2));
  // 4-D, absolute strides 8, 1, 4 and 2 elements, innermost first.
  for (int i = 0; i < 16; ++i) {
    const int i0 = i & 1, i1 = (i >> 1) & 1, i2 = (i >> 2) & 1,
              i3 = (i >> 3) & 1;
    EXPECT_EQ(r.words[45 + i], uint32_t(8 * i0 + i1 + 4 * i2 + 2 * i3)) << i;
  }
  for (size_t i = 1; i < r.run.cores.size(); ++i) {
    EXPECT_EQ(r.run.cores[i].fpu_issues, 0u);
  }
}

TEST(IssClusterTest, PackedSinglesFollowTheirLaneSemantics) {
  Result r = RunProgram("vector");
  ASSERT_EQ(r.words.size(), 3u);
  // vfmac.s per lane (fused), four staggered accumulators, then vfsum.s
  // (lanes and the running sum added, rounded once).
  float acc[4][2] = {};
  for (int j = 0; j < 32; ++j) {
    for (int l = 0; l < 2; ++l) {
      const float a = 0.5f + (2 * j + l) * 0.375f;
      const float b = 1.25f - (2 * j + l) * 0.0625f;
      acc[j % 4][l] = std::fma(a, b, acc[j % 4][l]);
    }
  }
  float sum = 0;
  for (auto& lanes : acc)
    sum = static_cast<float>(double{lanes[0]} + lanes[1] + sum);
  uint32_t bits;
  std::memcpy(&bits, &sum, 4);
  EXPECT_EQ(r.words[0], bits);
  EXPECT_EQ(r.words[1], 0x3fc00000u);  // vfcpka.s.s lane 0: 1.5f
  EXPECT_EQ(r.words[2], 0xc0000000u);  // lane 1: -2.0f
  // 32 vfmac.s of 4 FLOPs and 4 vfsum.s of 2.
  EXPECT_GE(r.run.cores[0].flops_fp32, 32u * 4 + 4 * 2);
  EXPECT_EQ(r.run.cores[0].flops_fp64, 0u);
}

TEST(IssClusterTest, DmaCopiesOneAndTwoDimensionsInTheirTime) {
  Result r = RunProgram("dma");
  ASSERT_EQ(r.words.size(), 37u);
  const iss::ClusterConfig cfg;
  // 4 KiB from DRAM: HBM latency, then its share of the bandwidth.
  const uint32_t predicted = cfg.hbm_latency + 4096 / cfg.hbm_bytes_per_cycle;
  EXPECT_GE(r.words[0], predicted);
  EXPECT_LE(r.words[0], predicted + 12);
  EXPECT_EQ(r.words[1], 2u);  // iDMA's first transfer id.
  EXPECT_EQ(r.words[2], 0u);  // Read before the transfer ended: old bytes.
  EXPECT_EQ(r.words[3], 1u);  // After it: the copy.
  for (int row = 0; row < 8; ++row)
    for (int col = 0; col < 4; ++col)
      EXPECT_EQ(r.words[4 + row * 4 + col], uint32_t(row * 16 + 4 + col));
  EXPECT_EQ(r.words[36], 65408u);  // The sum of 0.5 * (0..511) in TCDM.
  EXPECT_EQ(r.run.dma.transfers, 3u);
  EXPECT_EQ(r.run.dma.bytes, 4096u + 8 * 16 + 64);
  EXPECT_EQ(r.run.dma.dram_bytes, r.run.dma.bytes);
}

TEST(IssClusterTest, AStackOverflowIntoAnotherCoresStackIsNamed) {
  const std::string path =
      testing::Runfile("tests/riscv_cluster/stack_overflow.elf");
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> elf((std::istreambuf_iterator<char>(in)), {});
  iss::Cluster cluster;
  ASSERT_TRUE(cluster.Load(elf).ok());
  const iss::ClusterRun run = cluster.Run(1 << 20);
  EXPECT_FALSE(run.ok);
  EXPECT_NE(run.error.find("core 1: store at"), std::string::npos) << run.error;
  EXPECT_NE(run.error.find("core 1's stack (1 KiB) overflowed"),
            std::string::npos)
      << run.error;
}

// Writes `scenario` and `arg` over refusals.elf's zeros in a loaded
// cluster.
bool SetScenario(iss::Cluster& cluster, RefusalScenario scenario,
                 uint32_t arg) {
  for (const auto& [name, value] :
       {std::pair<std::string, uint32_t>{"scenario",
                                         static_cast<uint32_t>(scenario)},
        {"arg", arg}}) {
    auto it = cluster.symbols().find(name);
    if (it == cluster.symbols().end() ||
        !cluster.memory().Store<uint32_t>(it->second, value)) {
      ADD_FAILURE() << "refusals.elf has no " << name;
      return false;
    }
  }
  return true;
}

// refusals.elf with `scenario` and `arg` written over the program's
// zeros, so that one ELF serves every refusal (each ends its run).
iss::ClusterRun RunScenario(RefusalScenario scenario, uint32_t arg = 0) {
  iss::Cluster cluster;
  iss::ClusterRun run;
  run.error = "not run";
  if (absl::Status s = cluster.Load(ReadElf("refusals")); !s.ok()) {
    ADD_FAILURE() << s;
    return run;
  }
  if (!SetScenario(cluster, scenario, arg)) return run;
  return cluster.Run(uint64_t{1} << 24);
}

// The refusal's own message, not just any failure: a refusal that went
// missing would otherwise pass as whatever fault came after it.
::testing::AssertionResult Refused(const iss::ClusterRun& run,
                                   const std::string& message) {
  if (run.ok) return ::testing::AssertionFailure() << "the run succeeded";
  if (run.error.find(message) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "error \"" << run.error << "\" lacks \"" << message << "\"";
  }
  return ::testing::AssertionSuccess();
}

uint32_t OnlyWord(const iss::ClusterRun& run) {
  uint32_t w = 0;
  EXPECT_EQ(run.out.size(), 4u);
  if (run.out.size() == 4) std::memcpy(&w, run.out.data(), 4);
  return w;
}

std::vector<uint32_t> Words(const iss::ClusterRun& run) {
  std::vector<uint32_t> w(run.out.size() / 4);
  std::memcpy(w.data(), run.out.data(), w.size() * 4);
  return w;
}

TEST(IssClusterTest, CustomInstructionsWaitForTheLoadOfTheirOperand) {
  const iss::ClusterRun xfrep_xssr = RunScenario(kLoadUseXfrepXssr);
  ASSERT_TRUE(xfrep_xssr.ok) << xfrep_xssr.error;
  const iss::ClusterRun xdma = RunScenario(kLoadUseXdma);
  ASSERT_TRUE(xdma.ok) << xdma.error;
  std::vector<uint32_t> got = Words(xfrep_xssr);
  for (uint32_t w : Words(xdma)) got.push_back(w);
  ASSERT_EQ(got.size(), 8u);
  const iss::ClusterConfig cfg;
  // mcycle read at T, the lw at T + 1 (DRAM: no bank to wait for), its
  // value ready at T + 2 + dram_latency, when the instruction issues; the
  // second read a cycle later, or two for frep.o, whose body's fadd.d the
  // core issues next. The independent instruction between the load and
  // its use issues in the load's shadow and so costs nothing. (Not
  // waiting: 3 and 4 cycles, frep.o 4 and 5.)
  const uint32_t wait = 3 + cfg.dram_latency;
  const std::pair<const char*, uint32_t> want[] = {{"frep.o", wait + 1},
                                                   {"scfgwi", wait},
                                                   {"dmsrc", wait},
                                                   {"dmcpyi", wait}};
  for (int i = 0; i < 4; ++i) {
    const auto& [name, cycles] = want[i];
    EXPECT_EQ(got[2 * i], cycles) << name << " right after the load";
    EXPECT_EQ(got[2 * i + 1], cycles) << name << " an instruction later";
  }
}

TEST(IssRefusalTest, FrepCountsIterationsInSixteenBits) {
  // The body runs rs1 + 1 times, rs1 taken modulo 2^16 (the sequencer's
  // counter, LoopIterBits): a count beyond it wraps rather than faults.
  const std::pair<uint32_t, uint32_t> cases[] = {
      {2, 3}, {0xffff, 65536}, {0x10000, 1}, {0x10002, 3}};
  for (const auto& [rs1, runs] : cases) {
    const iss::ClusterRun run = RunScenario(kFrepCount, rs1);
    ASSERT_TRUE(run.ok) << run.error;
    EXPECT_EQ(OnlyWord(run), runs) << "rs1 0x" << std::hex << rs1;
    EXPECT_EQ(run.cores[0].frep_repeats, runs - 1)
        << "rs1 0x" << std::hex << rs1;
  }
}

TEST(IssRefusalTest, FrepInnerIsRefused) {
  EXPECT_TRUE(Refused(RunScenario(kFrepInner, 3),
                      "core 0: frep.i (removed from snitch_cluster in "
                      "f1aecce7) is not modeled"));
}

TEST(IssRefusalTest, FrepInsideAFrepBodyIsRefused) {
  EXPECT_TRUE(Refused(RunScenario(kFrepNested, 3),
                      "core 0: frep.o inside a FREP body (nesting is not "
                      "modeled)"));
}

TEST(IssRefusalTest, FrepStreamControlAndOversizedBodiesAreRefused) {
  EXPECT_TRUE(Refused(RunScenario(kFrepStreamControl, 3),
                      "core 0: frep.o: a 1-instruction body with stream "
                      "control (the sequencer holds 32)"));
  EXPECT_TRUE(Refused(RunScenario(kFrepBodyTooLong, 3),
                      "core 0: frep.o: a 33-instruction body (the sequencer "
                      "holds 32)"));
}

TEST(IssRefusalTest, ReadingAnSsrPastTheEndOfItsStreamIsRefused) {
  // Four reads of the four elements 1..4 are fine;
  const iss::ClusterRun four = RunScenario(kSsrPastTheEnd, 3);
  ASSERT_TRUE(four.ok) << four.error;
  EXPECT_EQ(OnlyWord(four), 10u);
  // a fifth would wait forever on silicon.
  EXPECT_TRUE(Refused(RunScenario(kSsrPastTheEnd, 4),
                      "core 0: ft0 is read with SSRs enabled but no stream "
                      "job running"));
  EXPECT_TRUE(Refused(RunScenario(kSsrReadOfWriteStream),
                      "core 0: ft2 is read while it streams writes"));
}

TEST(IssRefusalTest, WritingAnSsrWithNoWriteStreamRunningIsRefused) {
  // Four writes fill the 4-element write stream with 1..4;
  const iss::ClusterRun four = RunScenario(kSsrWritePastTheEnd, 3);
  ASSERT_TRUE(four.ok) << four.error;
  EXPECT_EQ(OnlyWord(four), 10u);
  // a fifth would go to the data mover, not the register, with no job to
  // take it; as would a write while reading, or with no job ever started.
  EXPECT_TRUE(Refused(RunScenario(kSsrWritePastTheEnd, 4),
                      "core 0: ft2 is written with SSRs enabled but no write "
                      "stream running"));
  EXPECT_TRUE(Refused(RunScenario(kSsrWriteOfReadStream),
                      "core 0: ft0 is written with SSRs enabled but no write "
                      "stream running"));
  EXPECT_TRUE(Refused(RunScenario(kSsrWriteWithoutJob),
                      "core 0: ft1 is written with SSRs enabled but no write "
                      "stream running"));
}

TEST(IssRefusalTest, DmaTransfersOver64MiBAreRefused) {
  const uint32_t cap = 64u << 20;
  const iss::ClusterRun at_cap = RunScenario(kDmaBytes, cap);
  ASSERT_TRUE(at_cap.ok) << at_cap.error;
  EXPECT_EQ(at_cap.dma.bytes, cap);
  EXPECT_TRUE(Refused(RunScenario(kDmaBytes, cap + 1),
                      "core 8: dmcpyi: 67108865 bytes in one transfer (at "
                      "most 64 MiB)"));
  // The cap is on the whole 2-D transfer, rows times row size.
  const iss::ClusterRun rows = RunScenario(kDmaRows, 64);
  ASSERT_TRUE(rows.ok) << rows.error;
  EXPECT_EQ(rows.dma.bytes, cap);
  EXPECT_TRUE(Refused(RunScenario(kDmaRows, 65),
                      "core 8: dmcpyi: 68157440 bytes in one transfer"));
}

TEST(IssRefusalTest, DmaAddressesAbove4GiBAreRefused) {
  const iss::ClusterRun low = RunScenario(kDmaSourceHigh, 0);
  ASSERT_TRUE(low.ok) << low.error;
  EXPECT_EQ(low.dma.transfers, 1u);
  EXPECT_TRUE(Refused(RunScenario(kDmaSourceHigh, 1),
                      "core 8: dmsrc: address 0x0000000180000000 is beyond "
                      "the cluster's 4 GiB"));
  ASSERT_TRUE(RunScenario(kDmaDestinationHigh, 0).ok);
  EXPECT_TRUE(Refused(RunScenario(kDmaDestinationHigh, 0xffffffff),
                      "core 8: dmdst: address 0xffffffff10000000 is beyond "
                      "the cluster's 4 GiB"));
}

TEST(IssRefusalTest, EachCoreKeepsToItsOwnExtensions) {
  EXPECT_TRUE(Refused(RunScenario(kDmaOnComputeCore),
                      "core 3: dmsrc: only the data mover core has the DMA"));
  EXPECT_TRUE(Refused(RunScenario(kSsrConfigOnDataMover),
                      "core 8: SSR configuration: this core has no SSRs"));
  EXPECT_TRUE(Refused(RunScenario(kSsrEnableOnDataMover),
                      "core 8: CSR 0x7C0 (ssr): this core has no SSRs"));
  EXPECT_TRUE(Refused(RunScenario(kFrepOnDataMover, 3),
                      "core 8: frep.o: this core has no sequencer"));
}

TEST(IssClusterResetTest, EachProgramRunsAgainAsItDidFresh) {
  for (const char* name : {"barrier", "ssr_frep", "vector", "dma"}) {
    iss::Cluster cluster;
    ASSERT_TRUE(cluster.Load(ReadElf(name)).ok()) << name;
    const iss::ClusterRun first = cluster.Run(uint64_t{1} << 24);
    ASSERT_TRUE(first.ok) << name << ": " << first.error;
    for (int again = 0; again < 2; ++again) {
      ASSERT_TRUE(cluster.Reset().ok()) << name;
      ExpectSameRun(cluster.Run(uint64_t{1} << 24), first, name);
    }
  }
}

// One cluster reset between scenarios, most of which stop it mid-way (a
// FREP body recording, streams running, transfers in flight, a core at
// the barrier), runs each as a fresh cluster does.
TEST(IssClusterResetTest, EveryScenarioAfterAnotherRunsAsItDoesFresh) {
  const std::vector<std::pair<RefusalScenario, uint32_t>> scenarios = {
      {kFrepCount, 70000},
      {kFrepNested, 3},
      {kSsrPastTheEnd, 3},
      {kFrepInner, 3},
      {kSsrPastTheEnd, 4},
      {kSsrReadOfWriteStream, 0},
      {kDmaBytes, 4096},
      {kDmaOnComputeCore, 0},
      {kSsrWritePastTheEnd, 3},
      {kSsrConfigOnDataMover, 0},
      {kDmaRows, 65},
      {kSsrEnableOnDataMover, 0},
      {kLoadUseXdma, 0},
      {kFrepOnDataMover, 3},
      {kDmaSourceHigh, 1},
      {kSsrWriteWithoutJob, 0},
      {kLoadUseXfrepXssr, 0},
      {kFrepStreamControl, 3},
      {kDmaDestinationHigh, 1},
      {kFrepBodyTooLong, 3},
      {kSsrWriteOfReadStream, 0},
      {kFrepCount, 5},
  };
  iss::Cluster reused;
  EXPECT_EQ(reused.Reset().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(reused.Load(ReadElf("refusals")).ok());
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& [scenario, arg] : scenarios) {
      const std::string what = "scenario " + std::to_string(scenario) +
                               " arg " + std::to_string(arg) + ", pass " +
                               std::to_string(pass);
      ASSERT_TRUE(reused.Reset().ok()) << what;
      ASSERT_TRUE(SetScenario(reused, scenario, arg)) << what;
      ExpectSameRun(reused.Run(uint64_t{1} << 24), RunScenario(scenario, arg),
                    what);
    }
  }
}

// The address generator alone: relative strides, repetition, and a job
// queued behind a running one (the shadow registers).
TEST(SsrTest, WalksBoundsStridesAndRepeatsThenStartsTheQueuedJob) {
  iss::Ssr ssr;
  ssr.WriteConfig(1, 1);         // Each element twice.
  ssr.WriteConfig(2, 2);         // 3 elements per row,
  ssr.WriteConfig(3, 1);         // 2 rows,
  ssr.WriteConfig(6, 8);         // 8 bytes apart,
  ssr.WriteConfig(7, 104 - 16);  // rows 104 bytes apart.
  ssr.WriteConfig(25, 1000);     // Read, 2 dimensions, from 1000.
  ssr.WriteConfig(24, 5000);     // Queued: 1-D from 5000.
  std::vector<uint32_t> seen;
  while (ssr.active() && seen.size() < 40) {
    seen.push_back(ssr.address());
    ssr.Advance();
  }
  const std::vector<uint32_t> want = {
      1000, 1000, 1008, 1008, 1016, 1016, 1104, 1104, 1112, 1112, 1120, 1120,
      // The queued job kept the configuration it was started with.
      5000, 5000, 5008, 5008, 5016, 5016};
  EXPECT_EQ(seen, want);
  EXPECT_EQ(ssr.ReadConfig(0) >> 31, 1u);  // Done.
}

}  // namespace
}  // namespace joule
