// The tile model's ISS-measured cost table: parsing, interpolation, the
// committed table's freshness, and the tile model charging from it.
#include "device/riscv/sim/cost_table.h"

#include <cmath>
#include <cstdlib>
#include <string>

#include "device/riscv/sim/calibration.h"
#include "device/riscv/sim/tile_model_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_paths.h"

namespace joule::riscv {
namespace {

using ::testing::HasSubstr;

// A 2 x 2 x 2 GEMM grid, a 2 x 1 attention grid and one element-wise entry.
constexpr char kSmall[] =
    "# comment\n"
    "gemm 8 64 1 0.10\ngemm 8 64 4 0.20\ngemm 8 256 1 0.30\n"
    "gemm 8 256 4 0.40\ngemm 32 64 1 0.50\ngemm 32 64 4 0.60\n"
    "gemm 32 256 1 0.70\ngemm 32 256 4 0.80   # trailing comment\n"
    "attention 16 16 0.2\nattention 32 16 0.4\n"
    "rmsnorm 0.05\n";

TEST(CostTableTest, InterpolatesInLogSpaceAndClampsOutside) {
  auto t = CostTable::Parse(kSmall);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_DOUBLE_EQ(t->Gemm(8, 64, 1), 0.10);
  EXPECT_DOUBLE_EQ(t->Gemm(32, 256, 4), 0.80);
  EXPECT_DOUBLE_EQ(t->Gemm(16, 64, 1), 0.30);      // Halfway in log2(rows).
  EXPECT_DOUBLE_EQ(t->Gemm(16, 128, 2), 0.45);     // The cell's centre.
  EXPECT_DOUBLE_EQ(t->Gemm(1, 1, 1), 0.10);        // Clamped below,
  EXPECT_DOUBLE_EQ(t->Gemm(1e6, 1e6, 1e6), 0.80);  // and above.
  EXPECT_NEAR(t->Attention(20, 1000), 0.2 + 0.2 * std::log2(20.0 / 16), 1e-12);
  EXPECT_EQ(t->Elementwise("rmsnorm"), 0.05);
  EXPECT_EQ(t->Elementwise("rope"), std::nullopt);
}

TEST(CostTableTest, RefusesBadTablesNamingTheLine) {
  auto err = [](const std::string& text) {
    return std::string(CostTable::Parse(text).status().message());
  };
  EXPECT_THAT(err("gemm 8 64 1 0.1\nattention 16 16 0.2\ngemm 8 64 4 0.2\n"
                  "gemm 32 64 1 0.3\n"),
              HasSubstr("every combination"));
  EXPECT_THAT(err("gemm 8 64 1 1.5\n"), HasSubstr("line 1: a utilization"));
  EXPECT_THAT(err("\ngemm 8 64 1 0\n"), HasSubstr("line 2: a utilization"));
  EXPECT_THAT(err("gemm 8 64 1 1e-300\n"), HasSubstr("a utilization"));
  EXPECT_THAT(err("gemm 99.99999999999999 64 1 0.1\n"
                  "gemm 100.00000000000001 64 1 0.1\nattention 16 16 0.2\n"),
              HasSubstr("too close"));
  EXPECT_THAT(err("gemm 8 64 x 0.1\n"), HasSubstr("bad number 'x'"));
  EXPECT_THAT(err("gemm 8 64 nan 0.1\n"), HasSubstr("bad number"));
  EXPECT_THAT(err("gemm 0 64 1 0.1\n"), HasSubstr("a shape"));
  EXPECT_THAT(err("gemm 8 64 0.1\n"), HasSubstr("gemm takes 4 numbers"));
  EXPECT_THAT(err("conv 1 0.1\n"), HasSubstr("unknown kernel 'conv'"));
  EXPECT_THAT(err("rmsnorm 0.1\nrmsnorm 0.2\n"), HasSubstr("repeats"));
  EXPECT_THAT(err("rmsnorm 0.1\n"), HasSubstr("needs gemm and attention"));
  EXPECT_THAT(std::string(CostTable::Load("/nonexistent").status().message()),
              HasSubstr("cannot read"));
}

std::string Committed() {
  return testing::Runfile("device/riscv/sim/cost_table.txt");
}
std::string Image() {
  return testing::Runfile("device/riscv/sim/kernels/kernels.elf");
}

TEST(CostTableTest, TheCommittedTableIsCurrent) {
  // Re-measures a few grid points on the ISS: a change to the kernels or
  // the timing model that moves them by over 2% must be re-calibrated
  // (calibrate_tile_model) and committed.
  auto t = CostTable::Load(Committed());
  ASSERT_TRUE(t.ok()) << t.status();
  for (auto [rows, k, tokens] : {std::tuple{8, 64, 1}, std::tuple{32, 256, 4},
                                 std::tuple{128, 64, 16}}) {
    auto u = MeasureGemm(Image(), rows, k, tokens);
    ASSERT_TRUE(u.ok()) << u.status();
    EXPECT_NEAR(*u / t->Gemm(rows, k, tokens), 1.0, 0.02)
        << rows << " x " << k << " x " << tokens;
  }
  auto a = MeasureAttention(Image(), 32, 64);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_NEAR(*a / t->Attention(32, 64), 1.0, 0.02);
  auto r = MeasureElementwise(Image(), "rmsnorm");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(*r / *t->Elementwise("rmsnorm"), 1.0, 0.02);
}

TEST(CostTableTest, TheTileModelChargesTheMeasuredUtilization) {
  auto t = CostTable::Parse(kSmall);
  ASSERT_TRUE(t.ok());
  SimConfig config;
  TileModelEngine constant(config), measured(config, *t);
  // 768 rows over 24 clusters: 32 per cluster; K 256; 4 tokens -> 0.80.
  TileModelEngine::Work w = measured.GemmWork(768, 256, 4, false);
  EXPECT_DOUBLE_EQ(w.utilization, 0.80);
  EXPECT_TRUE(w.memory_in_utilization);
  Counters c;
  measured.Charge(w, &c);
  const double compute = 2.0 * 768 * 256 * 4 / (24 * 8 * 4 * 0.80);
  const double fixed =
      5 * config.barrier_cycles + config.launch_overhead_cycles;
  EXPECT_EQ(c.cycles, static_cast<uint64_t>(std::ceil(compute + fixed)));
  EXPECT_DOUBLE_EQ(constant.GemmWork(768, 256, 4, false).utilization,
                   config.gemm_utilization[1]);
  // Other precisions keep the configuration's constants.
  SimConfig fp16 = config;
  fp16.precision = Precision::kFp16;
  EXPECT_DOUBLE_EQ(
      TileModelEngine(fp16, *t).GemmWork(768, 256, 4, false).utilization,
      fp16.gemm_utilization[2]);
}

}  // namespace
}  // namespace joule::riscv
