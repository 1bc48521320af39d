// The RISC-V kernels on the simulated cluster: each GEMM variant's output
// against a host reference, and the cycle figures the tile model will be
// calibrated from: optimized GEMM's FPU utilization rises with size and
// stays below 100%, and the baseline is slower; and launches on a reused
// cluster against launches on fresh ones.
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "device/riscv/sim/iss/cluster.h"
#include "device/riscv/sim/iss/kernel_runner.h"
#include "device/riscv/sim/kernels/launch.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster_run_compare.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

using ::joule::testing::ExpectSameRun;

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
  struct Shape {
    int rows, cols, tokens;
    bool acc;
  };
  for (Shape sh : std::vector<Shape>{{64, 64, 1, false},
                                     {172, 64, 3, true},
                                     {64, 172, 1, false},
                                     {512, 288, 1, false},
                                     {128, 64, 8, true}}) {
    const int rows = sh.rows, cols = sh.cols, tokens = sh.tokens;
    std::vector<float> w(size_t(rows) * cols), x(size_t(tokens) * cols),
        y0(size_t(tokens) * rows);
    for (auto& v : w) v = u(rng);
    for (auto& v : x) v = u(rng);
    for (auto& v : y0) v = u(rng);
    const uint32_t pw = image->heap_base();
    const uint32_t px = pw + ((w.size() * 4 + 63) & ~63u);
    const uint32_t py = px + ((x.size() * 4 + 63) & ~63u);
    uint64_t cycles[2] = {};
    for (int opt = 0; opt < 2; ++opt) {
      auto r = image->Launch(opt ? JOULE_GEMV_FP32_OPT : JOULE_GEMV_FP32_BASE,
                             {uint32_t(rows), uint32_t(cols), pw, px, py,
                              uint32_t(tokens), sh.acc},
                             {{pw, Bytes(w)}, {px, Bytes(x)}, {py, Bytes(y0)}},
                             {{py, uint32_t(rows * tokens) * 4}});
      ASSERT_TRUE(r.ok()) << r.status();
      std::vector<float> y(size_t(rows) * tokens);
      std::memcpy(y.data(), r->outputs[0].data(), y.size() * 4);
      double worst = 0;
      for (int t = 0; t < tokens; ++t) {
        for (int i = 0; i < rows; ++i) {
          double want = sh.acc ? y0[size_t(t) * rows + i] : 0.0;
          for (int c = 0; c < cols; ++c)
            want += double(w[size_t(i) * cols + c]) * x[size_t(t) * cols + c];
          worst = std::max(worst, std::fabs(y[size_t(t) * rows + i] - want));
        }
      }
      EXPECT_LT(worst, 1e-6 * cols)
          << rows << "x" << cols << " tokens " << tokens << " opt " << opt;
      cycles[opt] = r->run.cycles;
    }
    EXPECT_LT(cycles[1], cycles[0]) << rows << "x" << cols;
    std::printf(
        "gemv fp32 %dx%d, %d token(s)%s: optimized %llu cycles, baseline "
        "%llu\n",
        rows, cols, tokens, sh.acc ? ", accumulating" : "",
        (unsigned long long)cycles[1], (unsigned long long)cycles[0]);
  }
  // More tokens than fit beside W in the TCDM are refused, not overrun.
  auto big = image->Launch(JOULE_GEMV_FP32_OPT,
                           {512, 288, image->heap_base(), image->heap_base(),
                            image->heap_base(), 20, 0},
                           {}, {});
  EXPECT_THAT(big.status().message(), ::testing::HasSubstr("shape outside"));
}

TEST(IssKernelsTest, DmaCopyMovesEveryListedRange) {
  auto image = iss::KernelImage::FromFile(
      testing::Runfile("device/riscv/sim/kernels/kernels.elf"));
  ASSERT_TRUE(image.ok()) << image.status();
  const uint32_t base = image->heap_base();
  std::vector<uint8_t> src(5000);
  for (size_t i = 0; i < src.size(); ++i) src[i] = uint8_t(i * 7 + 1);
  const uint32_t list = base, from = base + 64, to = base + 8192;
  // Two ranges, the second landing before the first (order kept).
  std::vector<uint32_t> triples = {from,        to + 1000, 4000,
                                   from + 4000, to,        1000};
  std::vector<uint8_t> list_bytes(triples.size() * 4);
  std::memcpy(list_bytes.data(), triples.data(), list_bytes.size());
  auto r = image->Launch(JOULE_DMA_COPY, {2, list},
                         {{list, list_bytes}, {from, src}}, {{to, 5000}});
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<uint8_t> want(5000);
  std::memcpy(want.data(), src.data() + 4000, 1000);
  std::memcpy(want.data() + 1000, src.data(), 4000);
  EXPECT_EQ(r->outputs[0], want);
  EXPECT_EQ(r->run.dma.bytes, 5000u);
  EXPECT_GT(r->run.cycles, 5000u / 16);  // DRAM to DRAM at HBM's share.
}

uint32_t FloatBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// Runs `kernel` with the buffers laid out one after another from the
// heap; returns each buffer's contents after the run (in order).
std::vector<std::vector<float>> RunVectors(
    uint32_t kernel, const std::vector<std::vector<float>>& buffers,
    const std::function<std::vector<uint32_t>(const std::vector<uint32_t>&)>&
        args) {
  auto image = iss::KernelImage::FromFile(
      testing::Runfile("device/riscv/sim/kernels/kernels.elf"));
  EXPECT_TRUE(image.ok()) << image.status();
  if (!image.ok()) return {};
  std::vector<uint32_t> at;
  std::vector<iss::KernelImage::Buffer> in;
  std::vector<std::pair<uint32_t, uint32_t>> out;
  uint32_t p = image->heap_base();
  for (const auto& b : buffers) {
    at.push_back(p);
    in.push_back({p, Bytes(b)});
    out.push_back({p, uint32_t(b.size() * 4)});
    p += (b.size() * 4 + 63) & ~63u;
  }
  auto r = image->Launch(kernel, args(at), in, out);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return {};
  std::vector<std::vector<float>> result;
  for (const auto& o : r->outputs) {
    result.emplace_back(o.size() / 4);
    std::memcpy(result.back().data(), o.data(), o.size());
  }
  return result;
}

std::vector<float> Random(size_t n, int seed, float lo = -1, float hi = 1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

TEST(IssKernelsTest, RmsNormIsTheReferenceFormula) {
  const int rows = 5, dim = 172;
  const auto x = Random(rows * dim, 1, -3, 3), w = Random(dim, 2);
  const float eps = 1e-5f;
  auto r = RunVectors(JOULE_RMSNORM, {x, w, std::vector<float>(rows * dim)},
                      [&](const std::vector<uint32_t>& at) {
                        return std::vector<uint32_t>{
                            rows, dim, at[0], at[1], at[2], FloatBits(eps)};
                      });
  ASSERT_EQ(r.size(), 3u);
  for (int i = 0; i < rows; ++i) {
    double ss = 0;
    for (int j = 0; j < dim; ++j) ss += double(x[i * dim + j]) * x[i * dim + j];
    const double scale = 1 / std::sqrt(ss / dim + eps);
    for (int j = 0; j < dim; ++j) {
      EXPECT_NEAR(r[2][i * dim + j], w[j] * scale * x[i * dim + j], 1e-5)
          << i << "," << j;
    }
  }
}

TEST(IssKernelsTest, SwiGluWithTheKernelsOwnExp) {
  const int n = 1000;
  const auto h = Random(n, 3, -20, 20), g = Random(n, 4);
  auto r =
      RunVectors(JOULE_SWIGLU, {h, g}, [&](const std::vector<uint32_t>& at) {
        return std::vector<uint32_t>{n, at[0], at[1]};
      });
  ASSERT_EQ(r.size(), 2u);
  for (int i = 0; i < n; ++i) {
    const double want = h[i] / (1 + std::exp(-double(h[i]))) * g[i];
    // joule_expf is within 2e-7 relative; the rest rounds to single.
    EXPECT_NEAR(r[0][i], want, 1e-6 * (1 + std::fabs(want))) << h[i];
  }
}

TEST(IssKernelsTest, RopeRotatesEachVectorByItsRow) {
  const int vectors = 11, hs = 16;
  const auto x = Random(vectors * hs, 5),
             angle = Random(vectors * hs / 2, 6, -3, 3);
  std::vector<float> c(angle.size()), s(angle.size());
  for (size_t i = 0; i < angle.size(); ++i) {
    c[i] = std::cos(angle[i]);
    s[i] = std::sin(angle[i]);
  }
  auto r =
      RunVectors(JOULE_ROPE, {x, c, s}, [&](const std::vector<uint32_t>& at) {
        return std::vector<uint32_t>{vectors, hs, at[0], at[1], at[2]};
      });
  ASSERT_EQ(r.size(), 3u);
  for (int v = 0; v < vectors; ++v) {
    for (int d = 0; d < hs; d += 2) {
      const float x0 = x[v * hs + d], x1 = x[v * hs + d + 1];
      const float cc = c[v * hs / 2 + d / 2], ss = s[v * hs / 2 + d / 2];
      EXPECT_NEAR(r[0][v * hs + d], x0 * cc - x1 * ss, 1e-6);
      EXPECT_NEAR(r[0][v * hs + d + 1], x0 * ss + x1 * cc, 1e-6);
    }
  }
}

// Causal attention with grouped KV heads over more positions than one key
// block, against a plain softmax in double.
TEST(IssKernelsTest, FlashAttentionMatchesPlainSoftmax) {
  const int queries = 3, heads = 4, kv_heads = 2, hs = 8, first = 37;
  const int positions = first + queries;
  const auto q = Random(queries * heads * hs, 7, -2, 2);
  const auto k = Random(positions * kv_heads * hs, 8, -2, 2);
  const auto v = Random(positions * kv_heads * hs, 9);
  const float scale = 1 / std::sqrt(float(hs));
  auto r =
      RunVectors(JOULE_ATTENTION, {q, k, v, std::vector<float>(q.size())},
                 [&](const std::vector<uint32_t>& at) {
                   return std::vector<uint32_t>{
                       queries, heads, kv_heads,         hs,   at[0], at[1],
                       at[2],   at[3], FloatBits(scale), first};
                 });
  ASSERT_EQ(r.size(), 4u);
  for (int i = 0; i < queries; ++i) {
    for (int h = 0; h < heads; ++h) {
      const int kvh = h / (heads / kv_heads), n = first + i + 1;
      std::vector<double> s(n);
      double m = -1e300, sum = 0;
      for (int j = 0; j < n; ++j) {
        double dot = 0;
        for (int d = 0; d < hs; ++d)
          dot += double(q[(i * heads + h) * hs + d]) *
                 k[(j * kv_heads + kvh) * hs + d];
        s[j] = dot * scale;
        m = std::max(m, s[j]);
      }
      for (double& x : s) sum += (x = std::exp(x - m));
      for (int d = 0; d < hs; ++d) {
        double want = 0;
        for (int j = 0; j < n; ++j)
          want += s[j] / sum * v[(j * kv_heads + kvh) * hs + d];
        EXPECT_NEAR(r[3][(i * heads + h) * hs + d], want, 2e-6)
            << i << " " << h << " " << d;
      }
    }
  }
}

struct Step {
  std::string name;
  uint32_t kernel = 0;
  std::vector<uint32_t> args;
  std::vector<iss::KernelImage::Buffer> inputs;
  std::vector<std::pair<uint32_t, uint32_t>> outputs;
  iss::ClusterConfig config;
};

// Different kernels one after another, with what a fresh cluster would
// not show if it saw a previous launch's bytes or state: GEMVs that
// accumulate into a y no input writes (a fresh cluster reads zeros there)
// where a GEMM left its C, a copy of bytes no input wrote, launches that
// stop with a refusal or an access fault mid-way, and a configuration
// that differs from the previous launch's.
std::vector<Step> MixedLaunches(uint32_t heap) {
  const uint32_t a = heap, b = heap + 4096, c = heap + 8192;
  const uint32_t w = heap + 16384, x = heap + 32768, far = heap + 65536;
  iss::ClusterConfig slow_dram;
  slow_dram.dram_latency = 9;
  slow_dram.hbm_latency = 150;
  std::vector<Step> s;
  s.push_back(
      {"gemm fp32 32^3",
       JOULE_GEMM_FP32_OPT,
       {32, 32, 32, a, b, c},
       {{a, Bytes(Random(32 * 32, 11))}, {b, Bytes(Random(32 * 32, 12))}},
       {{c, 32 * 32 * 4}}});
  s.push_back({"gemv fp32 accumulating into the GEMM's C",
               JOULE_GEMV_FP32_OPT,
               {64, 64, w, x, c, 1, 1},
               {{w, Bytes(Random(64 * 64, 13))}, {x, Bytes(Random(64, 14))}},
               {{c, 64 * 4}}});
  s.push_back({"gemm fp64 refusing 12 rows",
               JOULE_GEMM_FP64_OPT,
               {12, 16, 16, a, b, c},
               {},
               {}});
  s.push_back({"rmsnorm, slower DRAM",
               JOULE_RMSNORM,
               {3, 64, a, b, far, FloatBits(1e-5f)},
               {{a, Bytes(Random(3 * 64, 15))}, {b, Bytes(Random(64, 16))}},
               {{far, 3 * 64 * 4}},
               slow_dram});
  s.push_back({"dma copy from unmapped memory",
               JOULE_DMA_COPY,
               {1, a},
               {{a, Bytes(std::vector<uint32_t>{0x1000, far, 256})}},
               {}});
  s.push_back({"gemm fp64 with B unmapped",
               JOULE_GEMM_FP64_OPT,
               {16, 16, 16, a, 0x2000, c},
               {{a, Bytes(std::vector<double>(16 * 16, 1.5))}},
               {}});
  s.push_back(
      {"swiglu",
       JOULE_SWIGLU,
       {100, a, b},
       {{a, Bytes(Random(100, 17, -5, 5))}, {b, Bytes(Random(100, 18))}},
       {{a, 400}}});
  s.push_back({"gemv fp32 base accumulating, slower DRAM",
               JOULE_GEMV_FP32_BASE,
               {64, 64, w, x, far, 2, 1},
               {{w, Bytes(Random(64 * 64, 19))}, {x, Bytes(Random(128, 20))}},
               {{far, 2 * 64 * 4}},
               slow_dram});
  s.push_back(
      {"dma copy of bytes no input wrote",
       JOULE_DMA_COPY,
       {1, heap + 60000},
       {{heap + 60000, Bytes(std::vector<uint32_t>{c, heap + 70000, 1024})}},
       {{heap + 70000, 1024}}});
  s.push_back({"rope",
               JOULE_ROPE,
               {4, 16, a, b, c},
               {{a, Bytes(Random(64, 21))},
                {b, Bytes(Random(32, 22))},
                {c, Bytes(Random(32, 23))}},
               {{a, 64 * 4}}});
  return s;
}

void ExpectSameLaunch(const absl::StatusOr<iss::KernelImage::Result>& got,
                      const absl::StatusOr<iss::KernelImage::Result>& want,
                      const std::string& what) {
  ASSERT_EQ(got.status(), want.status()) << what;
  if (!got.ok()) return;
  ExpectSameRun(got->run, want->run, what);
  EXPECT_EQ(got->outputs, want->outputs) << what;
}

absl::StatusOr<iss::KernelImage::Result> Launch(const iss::KernelImage& image,
                                                const Step& s) {
  return image.Launch(s.kernel, s.args, s.inputs, s.outputs, s.config);
}

// Each launch on a fresh cluster: an image of its own has none cached.
absl::StatusOr<iss::KernelImage::Result> LaunchFresh(const Step& s) {
  auto image = iss::KernelImage::FromFile(
      testing::Runfile("device/riscv/sim/kernels/kernels.elf"));
  if (!image.ok()) return image.status();
  return Launch(*image, s);
}

TEST(IssKernelsTest, LaunchesOnAReusedClusterMatchFreshOnes) {
  auto image = iss::KernelImage::FromFile(
      testing::Runfile("device/riscv/sim/kernels/kernels.elf"));
  ASSERT_TRUE(image.ok()) << image.status();
  const std::vector<Step> steps = MixedLaunches(image->heap_base());
  std::vector<absl::StatusOr<iss::KernelImage::Result>> fresh;
  for (const Step& s : steps) fresh.push_back(LaunchFresh(s));
  // The ones meant to fail (those that read nothing back) do, and only
  // those.
  for (size_t i = 0; i < steps.size(); ++i) {
    const bool fails = steps[i].outputs.empty();
    EXPECT_EQ(fresh[i].ok(), !fails)
        << steps[i].name << ": " << fresh[i].status();
  }
  // Twice through: the second pass starts where the first left off.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < steps.size(); ++i) {
      ExpectSameLaunch(Launch(*image, steps[i]), fresh[i],
                       steps[i].name + ", pass " + std::to_string(pass));
    }
  }
}

// The same on one Cluster that Reset returns to its loaded state, failed
// runs included (whose counters a launch does not return).
iss::ClusterRun RunOn(iss::Cluster& cluster, const Step& s,
                      std::vector<std::vector<uint8_t>>* outputs) {
  JouleLaunch launch = {};
  launch.kernel = s.kernel;
  std::copy(s.args.begin(), s.args.end(), launch.args);
  uint8_t* at =
      cluster.memory().At(cluster.symbols().at("joule_launch"), sizeof(launch));
  std::memcpy(at, &launch, sizeof(launch));
  for (const auto& b : s.inputs) {
    std::memcpy(cluster.memory().At(b.addr, b.bytes.size()), b.bytes.data(),
                b.bytes.size());
  }
  iss::ClusterRun run = cluster.Run(uint64_t{1} << 36);
  for (const auto& [addr, bytes] : s.outputs) {
    const uint8_t* p = cluster.memory().Read(addr, bytes);
    outputs->emplace_back(p, p + bytes);
  }
  return run;
}

TEST(IssKernelsTest, AResetClusterRunsAsAFreshOne) {
  std::ifstream in(testing::Runfile("device/riscv/sim/kernels/kernels.elf"),
                   std::ios::binary);
  const std::vector<uint8_t> elf((std::istreambuf_iterator<char>(in)), {});
  iss::Cluster reused;
  EXPECT_EQ(reused.Reset().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(reused.Load(elf).ok());
  auto image = iss::KernelImage::FromFile(
      testing::Runfile("device/riscv/sim/kernels/kernels.elf"));
  ASSERT_TRUE(image.ok()) << image.status();
  for (int pass = 0; pass < 2; ++pass) {
    for (Step s : MixedLaunches(image->heap_base())) {
      s.config = {};  // The reused cluster's.
      const std::string what = s.name + ", pass " + std::to_string(pass);
      iss::Cluster fresh;
      ASSERT_TRUE(fresh.Load(elf).ok());
      std::vector<std::vector<uint8_t>> want, got;
      const iss::ClusterRun want_run = RunOn(fresh, s, &want);
      ASSERT_TRUE(reused.Reset().ok());
      ExpectSameRun(RunOn(reused, s, &got), want_run, what);
      EXPECT_EQ(got, want) << what;
    }
  }
}

// Launches from several threads at once: each gets a cluster of its own
// (the cached one or a fresh one) and the results are a fresh run's.
TEST(IssKernelsTest, ConcurrentLaunchesMatchFreshOnes) {
  auto image = iss::KernelImage::FromFile(
      testing::Runfile("device/riscv/sim/kernels/kernels.elf"));
  ASSERT_TRUE(image.ok()) << image.status();
  const std::vector<Step> steps = MixedLaunches(image->heap_base());
  std::vector<absl::StatusOr<iss::KernelImage::Result>> fresh;
  for (const Step& s : steps) fresh.push_back(LaunchFresh(s));
  constexpr int kThreads = 3;
  std::vector<std::vector<absl::StatusOr<iss::KernelImage::Result>>> got(
      kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < steps.size(); ++i)
        got[t].push_back(Launch(*image, steps[(i + t) % steps.size()]));
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    for (size_t i = 0; i < steps.size(); ++i) {
      const size_t k = (i + t) % steps.size();
      ExpectSameLaunch(got[t][i], fresh[k],
                       steps[k].name + ", thread " + std::to_string(t));
    }
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
