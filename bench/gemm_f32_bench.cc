// The riscv tile model's fp32 GEMM (reference-exact; the host's share of a
// simulated step) per instruction set, on stories110M's 768 x 768 and
// 2048 x 768 projections, one and eight tokens.
//   bazel run -c opt //bench:gemm_f32_bench
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "device/riscv/sim/gemm_f32.h"

namespace {

void BM_Gemm(benchmark::State& state, const char* isa) {
  const int m = state.range(0), k = 768, n = state.range(1);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> w(size_t(m) * k), x(size_t(n) * k), y(size_t(n) * m);
  for (auto& v : w) v = u(rng);
  for (auto& v : x) v = u(rng);
  if (!joule::riscv::GemmF32ExactWith(isa, w.data(), x.data(), y.data(), m, k,
                                      n, false)) {
    state.SkipWithError("this CPU lacks it");
    return;
  }
  for (auto _ : state) {
    joule::riscv::GemmF32ExactWith(isa, w.data(), x.data(), y.data(), m, k, n,
                                   false);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GMAC/s"] =
      benchmark::Counter(1e-9 * double(m) * k * n * state.iterations(),
                         benchmark::Counter::kIsRate);
}

const bool registered = [] {
  for (const char* isa : {"scalar", "avx2", "avx512"}) {
    benchmark::RegisterBenchmark((std::string("Gemm/") + isa).c_str(), BM_Gemm,
                                 isa)
        ->ArgNames({"rows", "tokens"})
        ->ArgsProduct({{768, 2048}, {1, 8}});
  }
  return true;
}();

}  // namespace
