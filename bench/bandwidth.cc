#include "bench/bandwidth.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/time/clock.h"
#include "device/cpu/packed_weights.h"

namespace joule::bench {
namespace {

constexpr size_t kBytes = size_t{1} << 30;
constexpr int kChunks = 1024;

// One chunk summed with four independent 512-bit accumulators (each load
// independent of the last add, so many are in flight).
__attribute__((target("avx512f"))) uint64_t SumAvx512(const char* p,
                                                      size_t bytes) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < bytes; i += 256) {
    a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
    a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 64));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 128));
    a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 192));
  }
  return _mm512_reduce_add_epi64(
      _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
}

__attribute__((target("avx2"))) uint64_t SumAvx2(const char* p, size_t bytes) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < bytes; i += 128) {
    auto at = [p, i](int o) {
      return _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + o));
    };
    a0 = _mm256_add_epi64(a0, at(0));
    a1 = _mm256_add_epi64(a1, at(32));
    a2 = _mm256_add_epi64(a2, at(64));
    a3 = _mm256_add_epi64(a3, at(96));
  }
  const __m256i s =
      _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

uint64_t SumScalar(const char* p, size_t bytes) {
  const auto* q = reinterpret_cast<const uint64_t*>(p);
  uint64_t a[8] = {};
  for (size_t i = 0; i < bytes / 8; i += 8)
    for (int j = 0; j < 8; ++j) a[j] += q[i + j];
  return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

using SumFn = uint64_t (*)(const char*, size_t);

SumFn Widest(std::string* isa) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    *isa = "avx512";
    return SumAvx512;
  }
  if (__builtin_cpu_supports("avx2")) {
    *isa = "avx2";
    return SumAvx2;
  }
  *isa = "scalar";
  return SumScalar;
}

// Touched once so the timed reads find every page mapped.
cpu::WeightBuffer& Buffer() {
  static cpu::WeightBuffer* const buf = [] {
    auto* b = new cpu::WeightBuffer(kBytes);
    std::fill_n(static_cast<uint64_t*>(b->data()), kBytes / 8, 1);
    return b;
  }();
  return *buf;
}

double Simd(cpu::ThreadPool& pool, int reps, std::string* isa) {
  const SumFn sum = Widest(isa);
  const char* p = static_cast<const char*>(Buffer().data());
  std::vector<uint64_t> sums(kChunks);
  double best = 0;
  for (int rep = 0; rep < reps; ++rep) {
    const absl::Time t0 = absl::Now();
    pool.ParallelFor(kChunks, [&](int c0, int c1) {
      for (int c = c0; c < c1; ++c) {
        sums[c] = sum(p + size_t(c) * (kBytes / kChunks), kBytes / kChunks);
      }
    });
    best = std::max(best, kBytes / absl::ToDoubleSeconds(absl::Now() - t0));
  }
  return best;
}

// STREAM's pattern (a parallel loop over the array, reduced) with OpenMP's
// own threads and schedule, independent of the engine's pool.
double OpenMp(int reps, int* threads) {
  const double* a = static_cast<const double*>(Buffer().data());
  const size_t n = kBytes / sizeof(double);
  double best = 0, sink = 0;
  for (int rep = 0; rep < reps; ++rep) {
    const absl::Time t0 = absl::Now();
    double s = 0;
#pragma omp parallel for simd reduction(+ : s) schedule(static)
    for (size_t i = 0; i < n; ++i) s += a[i];
    best = std::max(best, kBytes / absl::ToDoubleSeconds(absl::Now() - t0));
    sink += s;
  }
  *threads = omp_get_max_threads();
  return sink != 0 ? best : best;  // `sink` keeps the sums alive.
}

}  // namespace

double MeasureSimdBandwidth(cpu::ThreadPool& pool, int reps) {
  std::string isa;
  return Simd(pool, reps, &isa);
}

Bandwidth MeasureBandwidth(cpu::ThreadPool& pool, int reps) {
  Bandwidth b;
  b.simd = Simd(pool, reps, &b.simd_isa);
  b.openmp = OpenMp(reps, &b.openmp_threads);
  return b;
}

}  // namespace joule::bench
