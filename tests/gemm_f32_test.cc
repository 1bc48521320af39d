// The tile model's fp32 GEMM must give the CPU reference engine's bits
// (greedy tokens on the riscv device equal the reference's): the AVX2
// path against the plain loop, over shapes with every kind of tail.
#include "device/riscv/sim/gemm_f32.h"

#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace joule {
namespace {

TEST(GemmF32ExactTest, EqualsThePlainLoopBitForBit) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-2, 2);
  cpu::ThreadPool pool(3);  // More threads than this machine's cores.
  for (auto [m, k, n] :
       std::vector<std::tuple<int, int, int>>{{1, 1, 1},
                                              {7, 5, 1},
                                              {32, 8, 1},
                                              {33, 9, 3},
                                              {64, 64, 8},
                                              {172, 64, 2},
                                              {100, 172, 5},
                                              {512, 288, 1},
                                              {40, 13, 1},
                                              {700, 600, 3},
                                              {1000, 1100, 1}}) {
    std::vector<float> w(size_t(m) * k), x(size_t(k) * n), y(size_t(n) * m),
        want(y.size());
    for (auto& v : w) v = u(rng);
    for (auto& v : x) v = u(rng);
    for (auto& v : y) v = u(rng);
    for (bool accumulate : {false, true}) {
      std::vector<float> got = y;
      want = y;
      for (int t = 0; t < n; ++t) {
        for (int r = 0; r < m; ++r) {
          float acc = 0.0f;
          for (int i = 0; i < k; ++i) {
            const float product = w[size_t(r) * k + i] * x[size_t(t) * k + i];
            acc = acc + product;  // Rounded separately, as the reference.
          }
          float& out = want[size_t(t) * m + r];
          out = accumulate ? out + acc : acc;
        }
      }
      riscv::GemmF32Exact(w.data(), x.data(), got.data(), m, k, n, accumulate);
      ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * 4), 0)
          << m << "x" << k << "x" << n << " accumulate " << accumulate;
      // Split over threads (the two large shapes pass the size threshold):
      // every output is still one thread's sum in the same order.
      got = y;
      riscv::GemmF32Exact(w.data(), x.data(), got.data(), m, k, n, accumulate,
                          &pool);
      ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * 4), 0)
          << "threads " << m << "x" << k << "x" << n;
      // Every path this CPU has, whichever the dispatch picks.
      for (const char* isa : {"scalar", "avx2", "avx512"}) {
        got = y;
        if (!riscv::GemmF32ExactWith(isa, w.data(), x.data(), got.data(), m, k,
                                     n, accumulate)) {
          continue;
        }
        ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * 4), 0)
            << isa << " " << m << "x" << k << "x" << n;
      }
    }
  }
}

}  // namespace
}  // namespace joule
