// The RISC-V ISS's command-line tools run as a user runs them, for what
// their flags promise: rv_run's --max_instructions and --stats,
// rv_cluster's --max_cycles, iss_bench's --repeats. The guest that never
// ends (tests/riscv_cluster/endless.c) would otherwise hang the tools for
// minutes at their defaults, so a flag that stopped working shows.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

using testing::Runfile;

const char kRvRun[] = "device/riscv/sim/iss/rv_run";
const char kRvCluster[] = "device/riscv/sim/iss/rv_cluster";
const char kEndless[] = "tests/riscv_cluster/endless.elf";

testing::RunResult RunTool(std::vector<std::string> argv) {
  // iss_bench's rounds take seconds each under TSan.
  return testing::Run(std::move(argv), testing::TempDir(), absl::Seconds(150));
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(RvRunTest, MaxInstructionsStopsAnEndlessLoop) {
  const testing::RunResult r =
      RunTool({Runfile(kRvRun), "--max_instructions=5000", Runfile(kEndless)});
  EXPECT_EQ(r.code, 124) << r.err;
  EXPECT_TRUE(Has(r.err, "rv_run: stopped after --max_instructions")) << r.err;
  EXPECT_FALSE(Has(r.err, "MIPS")) << "statistics without --stats: " << r.err;
}

TEST(RvRunTest, StatsCountTheInstructionsRun) {
  // Exactly the budget: the count is the hart's, not an estimate.
  testing::RunResult r =
      RunTool({Runfile(kRvRun), "--stats", "--max_instructions=5000",
               Runfile(kEndless)});
  EXPECT_EQ(r.code, 124) << r.err;
  EXPECT_TRUE(Has(r.err, "rv_run: 5000 instructions in ")) << r.err;
  EXPECT_TRUE(Has(r.err, " MIPS\n")) << r.err;
  // A program that exits: its output and status pass through beside them.
  r = RunTool({Runfile(kRvRun), "--stats", Runfile("tests/riscv_isa/alu.elf")});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_GT(r.out.size(), 80u);
  unsigned long long n = 0;
  double seconds = 0, mips = 0;
  ASSERT_EQ(std::sscanf(r.err.c_str(),
                        "rv_run: %llu instructions in %lf s: "
                        "%lf MIPS",
                        &n, &seconds, &mips),
            3)
      << r.err;
  EXPECT_GT(n, 1000u);
  EXPECT_GT(mips, 0);
}

TEST(RvClusterTest, MaxCyclesStopsAnEndlessCluster) {
  for (const int max_cycles : {2000, 40000}) {
    const std::string n = std::to_string(max_cycles);
    const testing::RunResult r =
        RunTool({Runfile(kRvCluster), "--max_cycles=" + n, Runfile(kEndless)});
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_TRUE(Has(r.err, "still running after " + n + " cycles")) << r.err;
    // Where the cores stood: past the limit by at most a scheduling
    // quantum and an instruction.
    unsigned long long cycles = 0;
    ASSERT_EQ(std::sscanf(r.err.c_str(), "rv_cluster: %llu cycles", &cycles), 1)
        << r.err;
    EXPECT_GE(cycles, static_cast<unsigned long long>(max_cycles)) << r.err;
    EXPECT_LE(cycles, static_cast<unsigned long long>(max_cycles) + 64)
        << r.err;
    // Every core's counters follow, all nine still running (exit 0).
    EXPECT_TRUE(Has(r.err, "\ncore 8: cycles ")) << r.err;
  }
}

// "<label>: <n> instructions, <mips> MIPS" from iss_bench's output: the
// seconds one round took at the best rate reported, a floor under every
// round's time.
double BestRoundSeconds(const std::string& out, const std::string& label) {
  const size_t at = out.find(label + ": ");
  if (at == std::string::npos) return -1;
  unsigned long long n = 0;
  double mips = 0;
  if (std::sscanf(out.c_str() + at + label.size(),
                  ": %llu instructions, %lf MIPS", &n, &mips) != 2 ||
      n == 0 || mips <= 0) {
    return -1;
  }
  // MIPS is printed to 0.1: round it up, so that the floor stays under.
  return n / ((mips + 0.05) * 1e6);
}

// iss_bench prints only the best round of each measurement, not how many
// ran; but N rounds take at least N times the best one, which a run that
// ignored the flag (3 rounds, the default) would not.
TEST(IssBenchTest, RepeatsRunsEachMeasurementThatManyTimes) {
  // One round of both measurements takes 0.3 s optimized and up to 5 s
  // under TSan.
  constexpr int kRepeats = 6;  // Twice the default, so an ignored flag fails.
  const absl::Time t0 = absl::Now();
  const testing::RunResult r = RunTool(
      {Runfile("bench/iss_bench"), "--repeats=" + std::to_string(kRepeats)});
  const double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  ASSERT_EQ(r.code, 0) << r.err;
  const double loop =
      BestRoundSeconds(r.out, "one hart, functional (loop.elf)");
  const double gemm =
      BestRoundSeconds(r.out, "cluster, timed (gemm_baseline.elf, 9 cores)");
  ASSERT_GT(loop, 0) << r.out;
  ASSERT_GT(gemm, 0) << r.out;
  EXPECT_GE(wall, kRepeats * (loop + gemm))
      << r.out << "(" << wall << " s in all)";
}

TEST(IssBenchTest, RepeatsBelowOneStillMeasureOnce) {
  const testing::RunResult r =
      RunTool({Runfile("bench/iss_bench"), "--repeats=0"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GT(BestRoundSeconds(r.out, "one hart, functional (loop.elf)"), 0)
      << r.out;
  EXPECT_GT(
      BestRoundSeconds(r.out, "cluster, timed (gemm_baseline.elf, 9 cores)"), 0)
      << r.out;
}

}  // namespace
}  // namespace joule
