// The CPU engine's inner kernels on one thread, per ISA this CPU has:
// the int8 and fp32 matmuls (GMAC/s, weights resident in L2 so the kernel
// and not memory bandwidth is measured) and one head's attention (millions of
// cached positions per second, the 110M shape's head size). The int8 matmul
// also runs on 65536 rows (50 MB, past the L3), its weights streamed from
// memory as in a decode step: the gap to 512 rows at 16 sequences is what
// streaming costs the kernel, and 1 sequence reads at one core's bandwidth.
//   bazel run -c opt //bench:cpu_kernels_bench
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "device/cpu/cache_tiles.h"
#include "device/cpu/kernels.h"
#include "device/cpu/packed_weights.h"

namespace {

using joule::cpu::Kernels;

std::vector<const Kernels*> Isas() {
  std::vector<const Kernels*> k = {&joule::cpu::GenericKernels()};
  if (const Kernels* a = joule::cpu::Avx2Kernels()) k.push_back(a);
  if (const Kernels* a = joule::cpu::Avx512VnniKernels()) k.push_back(a);
  return k;
}

// q4: the same weights' range in Q4_0 nibbles (groups of 32, as GGUF's),
// half the bytes; GB/s counts the weight and scale bytes read.
void BM_Q8Gemm(benchmark::State& state, const Kernels* k, bool q4) {
  const int rows = state.range(1), cols = 768, batch = state.range(0);
  const int gs = q4 ? 32 : 64;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> q(q4 ? 0 : -127, q4 ? 255 : 127);
  std::uniform_real_distribution<float> f(-1, 1);
  std::vector<int8_t> w(rows * cols), x(batch * cols);
  std::vector<float> ws(rows * cols / gs), xf(batch * cols),
      xs(batch * cols / gs), out(batch * rows);
  for (auto& v : w) v = static_cast<int8_t>(q(rng));
  for (auto& v : ws) v = f(rng);
  for (auto& v : xf) v = f(rng);
  for (int b = 0; b < batch; ++b) {
    k->quantize(xf.data() + b * cols, cols, gs, x.data() + b * cols,
                xs.data() + b * cols / gs);
  }
  std::unique_ptr<joule::cpu::PackedQ8> p =
      q4 ? joule::cpu::PackedQ8::FromQ4_0(
               reinterpret_cast<const uint8_t*>(w.data()), ws.data(), rows,
               cols, k->row_block, k->unsigned_activations)
         : std::make_unique<joule::cpu::PackedQ8>(w.data(), ws.data(), rows,
                                                  cols, gs, k->row_block,
                                                  k->unsigned_activations);
  const joule::cpu::Q8Weights& pw = p->weights();
  for (auto _ : state) {
    k->q8_gemm(pw, x.data(), xs.data(), batch, out.data(), rows, 0,
               pw.blocks());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GMAC/s"] =
      benchmark::Counter(1e-9 * rows * cols * batch * state.iterations(),
                         benchmark::Counter::kIsRate);
  const double bytes = double(pw.block_bytes()) * pw.blocks() +
                       sizeof(float) * double(rows) * cols / gs;
  state.counters["GB/s"] = benchmark::Counter(1e-9 * bytes * state.iterations(),
                                              benchmark::Counter::kIsRate);
}

// fp32 weights of 256 x 768 (768 KB, resident in L2).
void BM_F32Gemm(benchmark::State& state, const Kernels* k) {
  const int rows = 256, cols = 768, batch = state.range(0);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> f(-1, 1);
  std::vector<float> w(rows * cols), x(batch * cols), out(batch * rows);
  for (auto& v : w) v = f(rng);
  for (auto& v : x) v = f(rng);
  const joule::cpu::PackedF32 p(w.data(), rows, cols, k->f32_row_block);
  for (auto _ : state) {
    k->f32_gemm(p.weights(), x.data(), batch, out.data(), rows, 0,
                p.weights().blocks());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GFMA/s"] =
      benchmark::Counter(1e-9 * rows * cols * batch * state.iterations(),
                         benchmark::Counter::kIsRate);
}

// One head's attention over n cached positions (in cache: the kernel's
// own speed), for each cache format: 0 fp32, 1 fp16, 2 int8.
void BM_Attend(benchmark::State& state, const Kernels* k) {
  const int n = state.range(0), format = state.range(1), hs = 64;
  const int cap = (n + 15) / 16 * 16;
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> f(-1, 1);
  std::vector<float> keys(size_t(cap) * hs), values(keys.size()), q(hs),
      scores(cap), out(hs);
  for (auto& v : keys) v = f(rng);
  for (auto& v : values) v = f(rng);
  for (auto& v : q) v = f(rng);
  // The fp16 and int8 caches hold the same entries (layouts as the engine
  // writes them; the fp32 one is not tiled here, which its speed ignores).
  std::vector<uint16_t> keys16(keys.size()), values16(keys.size());
  k->to_f16(keys.data(), keys.size(), keys16.data(), 1);
  k->to_f16(values.data(), values.size(), values16.data(), 1);
  const size_t i8_bytes =
      size_t(cap / 16) * joule::cpu::CacheTile<int8_t>::Bytes(hs);
  std::vector<int8_t> keys8(i8_bytes), values8(i8_bytes);
  for (int t = 0; t < n; ++t) {
    k->store_i8(keys.data() + t * hs, values.data() + t * hs, hs, t,
                keys8.data(), values8.data());
  }
  for (auto _ : state) {
    if (format == 0) {
      k->attend(q.data(), keys.data(), values.data(), n, hs, 0.125f,
                scores.data(), out.data(), nullptr, nullptr);
    } else if (format == 1) {
      k->attend_f16(q.data(), keys16.data(), values16.data(), n, hs, 0.125f,
                    scores.data(), out.data(), nullptr, nullptr);
    } else {
      k->attend_i8(q.data(), keys8.data(), values8.data(), n, hs, 0.125f,
                   scores.data(), out.data(), nullptr, nullptr);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["Mpos/s"] = benchmark::Counter(1e-6 * n * state.iterations(),
                                                benchmark::Counter::kIsRate);
}

const bool registered = [] {
  for (const Kernels* k : Isas()) {
    benchmark::RegisterBenchmark(("Q8Gemm/" + k->isa).c_str(), BM_Q8Gemm, k,
                                 false)
        ->ArgNames({"batch", "rows"})
        ->ArgsProduct({{1, 4, 6, 16, 32}, {512}})
        ->ArgsProduct({{1, 16}, {65536}});
    benchmark::RegisterBenchmark(("Q4Gemm/" + k->isa).c_str(), BM_Q8Gemm, k,
                                 true)
        ->ArgNames({"batch", "rows"})
        ->ArgsProduct({{1, 16}, {512}})
        ->ArgsProduct({{1, 16}, {65536}});
    benchmark::RegisterBenchmark(("F32Gemm/" + k->isa).c_str(), BM_F32Gemm, k)
        ->ArgName("batch")
        ->Arg(1)
        ->Arg(4)
        ->Arg(16)
        ->Arg(32);
    benchmark::RegisterBenchmark(("Attend/" + k->isa).c_str(), BM_Attend, k)
        ->ArgNames({"positions", "fp32_fp16_int8"})
        ->ArgsProduct({{16, 64, 256, 1024}, {0, 1, 2}});
  }
  return true;
}();

}  // namespace
