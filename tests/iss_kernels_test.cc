// The RISC-V kernels on the simulated cluster: each GEMM variant's output
// against a host reference, and the cycle figures the tile model will be
// calibrated from: optimized GEMM's FPU utilization rises with size and
// stays below 100%, and the baseline is slower.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "device/riscv/sim/iss/kernel_runner.h"
#include "device/riscv/sim/kernels/launch.h"
#include "gtest/gtest.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

struct Gemm {
  std::vector<double> c;
  double utilization = 0;  // FPU-busy cycles of the 8 compute cores.
  uint64_t cycles = 0;
};

template <typename T>
std::vector<uint8_t> Bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// C = A x B on the cluster; fp32 kernels take B transposed.
template <typename T>
Gemm Run(uint32_t kernel, int m, int n, int k, const std::vector<T>& a,
         const std::vector<T>& b) {
  auto image = iss::KernelImage::FromFile(
      testing::Runfile("device/riscv/sim/kernels/kernels.elf"));
  EXPECT_TRUE(image.ok()) << image.status();
  if (!image.ok()) return {};
  std::vector<T> bt = b;
  if (sizeof(T) == 4) {
    for (int r = 0; r < k; ++r)
      for (int c = 0; c < n; ++c) bt[size_t(c) * k + r] = b[size_t(r) * n + c];
  }
  const uint32_t pa = image->heap_base();
  const uint32_t pb = pa + ((a.size() * sizeof(T) + 63) & ~63u);
  const uint32_t pc = pb + ((b.size() * sizeof(T) + 63) & ~63u);
  const uint32_t c_bytes = uint32_t(m) * n * sizeof(T);
  auto r =
      image->Launch(kernel, {uint32_t(m), uint32_t(n), uint32_t(k), pa, pb, pc},
                    {{pa, Bytes(a)}, {pb, Bytes(bt)}}, {{pc, c_bytes}});
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return {};
  Gemm g;
  std::vector<T> c(size_t(m) * n);
  std::memcpy(c.data(), r->outputs[0].data(), c_bytes);
  g.c.assign(c.begin(), c.end());
  uint64_t busy = 0;
  for (int i = 0; i < 8; ++i) busy += r->run.cores[i].fpu_busy;
  g.cycles = r->run.cycles;
  g.utilization = double(busy) / (8.0 * r->run.cycles);
  return g;
}

template <typename T>
void Check(uint32_t opt, uint32_t base, double tolerance) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(-1, 1);
  double last_utilization = 0;
  for (int size : {16, 32, 64}) {
    const int m = size, n = size, k = size;
    std::vector<T> a(size_t(m) * k), b(size_t(k) * n);
    for (auto& v : a) v = T(u(rng));
    for (auto& v : b) v = T(u(rng));
    const Gemm fast = Run<T>(opt, m, n, k, a, b);
    const Gemm slow = Run<T>(base, m, n, k, a, b);
    ASSERT_EQ(fast.c.size(), size_t(m) * n);
    ASSERT_EQ(slow.c.size(), size_t(m) * n);
    double worst = 0;
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        double want = 0;
        for (int q = 0; q < k; ++q)
          want += double(a[size_t(i) * k + q]) * double(b[size_t(q) * n + j]);
        worst = std::max({worst, std::fabs(fast.c[size_t(i) * n + j] - want),
                          std::fabs(slow.c[size_t(i) * n + j] - want)});
      }
    }
    EXPECT_LT(worst, tolerance * k) << size;
    EXPECT_GT(fast.utilization, last_utilization) << size;
    EXPECT_LT(fast.utilization, 1.0) << size;
    EXPECT_LT(fast.cycles, slow.cycles) << size;
    std::printf(
        "%s %d^3: optimized %llu cycles, FPU utilization %.1f%%; baseline "
        "%llu cycles (%.1f%%); max |error| %.2e\n",
        sizeof(T) == 8 ? "fp64" : "fp32", size, (unsigned long long)fast.cycles,
        100 * fast.utilization, (unsigned long long)slow.cycles,
        100 * slow.utilization, worst);
    last_utilization = fast.utilization;
  }
}

TEST(IssKernelsTest, GemmFp64) {
  // Products and sums in double on both sides: only the order differs.
  Check<double>(JOULE_GEMM_FP64_OPT, JOULE_GEMM_FP64_BASE, 1e-15);
}

TEST(IssKernelsTest, GemmFp32) {
  // Singles: the kernels round every step to single precision.
  Check<float>(JOULE_GEMM_FP32_OPT, JOULE_GEMM_FP32_BASE, 1e-6);
}

// y = W x for a weight matrix streamed from DRAM: the shapes of
// stories260K's projections (64 x 64, 172 x 64, 64 x 172) and a larger one
// that takes several tiles.
TEST(IssKernelsTest, GemvFp32) {
  auto image = iss::KernelImage::FromFile(
      testing::Runfile("device/riscv/sim/kernels/kernels.elf"));
  ASSERT_TRUE(image.ok()) << image.status();
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto [rows, cols] : std::vector<std::pair<int, int>>{
           {64, 64}, {172, 64}, {64, 172}, {512, 288}}) {
    std::vector<float> w(size_t(rows) * cols), x(cols);
    for (auto& v : w) v = u(rng);
    for (auto& v : x) v = u(rng);
    const uint32_t pw = image->heap_base();
    const uint32_t px = pw + ((w.size() * 4 + 63) & ~63u);
    const uint32_t py = px + ((x.size() * 4 + 63) & ~63u);
    uint64_t cycles[2] = {};
    for (int opt = 0; opt < 2; ++opt) {
      auto r = image->Launch(opt ? JOULE_GEMV_FP32_OPT : JOULE_GEMV_FP32_BASE,
                             {uint32_t(rows), uint32_t(cols), pw, px, py},
                             {{pw, Bytes(w)}, {px, Bytes(x)}},
                             {{py, uint32_t(rows) * 4}});
      ASSERT_TRUE(r.ok()) << r.status();
      std::vector<float> y(rows);
      std::memcpy(y.data(), r->outputs[0].data(), rows * 4);
      double worst = 0;
      for (int i = 0; i < rows; ++i) {
        double want = 0;
        for (int c = 0; c < cols; ++c)
          want += double(w[size_t(i) * cols + c]) * x[c];
        worst = std::max(worst, std::fabs(y[i] - want));
      }
      EXPECT_LT(worst, 1e-6 * cols) << rows << "x" << cols << " opt " << opt;
      cycles[opt] = r->run.cycles;
    }
    EXPECT_LT(cycles[1], cycles[0]) << rows << "x" << cols;
    std::printf("gemv fp32 %dx%d: optimized %llu cycles, baseline %llu\n", rows,
                cols, (unsigned long long)cycles[1],
                (unsigned long long)cycles[0]);
  }
}

TEST(IssKernelsTest, RefusesWhatItCannotTileByName) {
  auto image = iss::KernelImage::FromFile(
      testing::Runfile("device/riscv/sim/kernels/kernels.elf"));
  ASSERT_TRUE(image.ok()) << image.status();
  const uint32_t p = image->heap_base();
  auto r = image->Launch(JOULE_GEMM_FP64_OPT, {12, 16, 16, p, p, p}, {}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("shape outside"), std::string::npos)
      << r.status();
  r = image->Launch(999, {}, {}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown kernel"), std::string::npos);
}

}  // namespace
}  // namespace joule
