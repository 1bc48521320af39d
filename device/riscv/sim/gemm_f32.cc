#include "device/riscv/sim/gemm_f32.h"

#include <immintrin.h>

#include <algorithm>
#include <string>
#include <vector>

namespace joule::riscv {
namespace {

void Scalar(const float* w, const float* x, float* y, uint64_t m, uint64_t k,
            uint64_t n, bool accumulate, uint64_t ldy) {
  for (uint64_t t = 0; t < n; ++t) {
    const float* xr = x + t * k;
    for (uint64_t r = 0; r < m; ++r) {
      const float* wr = w + r * k;
      float acc = 0.0f;
      for (uint64_t i = 0; i < k; ++i) acc += wr[i] * xr[i];
      y[t * ldy + r] = accumulate ? y[t * ldy + r] + acc : acc;
    }
  }
}

constexpr int kBlocks = 4;          // Row blocks of 8 in flight.
constexpr int kRows = 8 * kBlocks;  // Rows per packed panel.

// Eight rows' floats [k0, k0 + 8) transposed in registers: col[j] holds
// column k0 + j of the eight rows.
__attribute__((target("avx2"))) inline void Columns(const float* const rows[8],
                                                    uint64_t k0,
                                                    __m256 col[8]) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(rows[i] + k0);
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  r[0] = _mm256_shuffle_ps(t[0], t[2], 0x44);
  r[1] = _mm256_shuffle_ps(t[0], t[2], 0xEE);
  r[2] = _mm256_shuffle_ps(t[1], t[3], 0x44);
  r[3] = _mm256_shuffle_ps(t[1], t[3], 0xEE);
  r[4] = _mm256_shuffle_ps(t[4], t[6], 0x44);
  r[5] = _mm256_shuffle_ps(t[4], t[6], 0xEE);
  r[6] = _mm256_shuffle_ps(t[5], t[7], 0x44);
  r[7] = _mm256_shuffle_ps(t[5], t[7], 0xEE);
  for (int j = 0; j < 4; ++j) {
    col[j] = _mm256_permute2f128_ps(r[j], r[j + 4], 0x20);
    col[j + 4] = _mm256_permute2f128_ps(r[j], r[j + 4], 0x31);
  }
}

// One token (a decode step's common case): nothing to reuse a packed
// panel for, so each 8 x 8 piece of W is transposed in registers and used
// at once.
__attribute__((target("avx2"))) void Avx2OneToken(const float* w,
                                                  const float* x, float* y,
                                                  uint64_t m, uint64_t k,
                                                  bool accumulate,
                                                  const float* zeros) {
  for (uint64_t r0 = 0; r0 < m; r0 += kRows) {
    const float* rows[kBlocks][8];
    for (int b = 0; b < kBlocks; ++b) {
      for (int i = 0; i < 8; ++i) {
        const uint64_t r = r0 + b * 8 + i;
        rows[b][i] = r < m ? w + r * k : zeros;
      }
    }
    __m256 acc[kBlocks];
    for (int b = 0; b < kBlocks; ++b) acc[b] = _mm256_setzero_ps();
    uint64_t k0 = 0;
    for (; k0 + 8 <= k; k0 += 8) {
      for (int b = 0; b < kBlocks; ++b) {
        __m256 col[8];
        Columns(rows[b], k0, col);
        for (int j = 0; j < 8; ++j) {
          acc[b] = _mm256_add_ps(
              acc[b], _mm256_mul_ps(col[j], _mm256_set1_ps(x[k0 + j])));
        }
      }
    }
    alignas(32) float out[kRows];
    for (int b = 0; b < kBlocks; ++b) _mm256_store_ps(out + 8 * b, acc[b]);
    const int live = static_cast<int>(std::min<uint64_t>(kRows, m - r0));
    for (int i = 0; i < live; ++i) {
      const float* wr = w + (r0 + i) * k;
      float v = out[i];
      for (uint64_t j = k0; j < k; ++j) v += wr[j] * x[j];  // The k tail.
      y[r0 + i] = accumulate ? y[r0 + i] + v : v;
    }
  }
}

// Rows [r0, r0 + 8 * groups) of W (missing ones zero) as pack[k][stride],
// eight rows at a time transposed in registers.
__attribute__((target("avx2"))) void Pack(const float* w, uint64_t m,
                                          uint64_t k, uint64_t r0, int groups,
                                          int stride, const float* zeros,
                                          float* pack) {
  for (int b = 0; b < groups; ++b) {
    const float* rows[8];
    for (int i = 0; i < 8; ++i) {
      const uint64_t r = r0 + b * 8 + i;
      rows[i] = r < m ? w + r * k : zeros;
    }
    uint64_t k0 = 0;
    for (; k0 + 8 <= k; k0 += 8) {
      __m256 col[8];
      Columns(rows, k0, col);
      for (int j = 0; j < 8; ++j)
        _mm256_storeu_ps(pack + (k0 + j) * stride + b * 8, col[j]);
    }
    for (; k0 < k; ++k0)
      for (int i = 0; i < 8; ++i) pack[k0 * stride + b * 8 + i] = rows[i][k0];
  }
}

// The products and sums as the scalar loop does them, lane by lane:
// _mm256_mul_ps then _mm256_add_ps, never fused (this function is built
// for AVX2 only, without FMA).
__attribute__((target("avx2"))) void Avx2(const float* w, const float* x,
                                          float* y, uint64_t m, uint64_t k,
                                          uint64_t n, bool accumulate,
                                          uint64_t ldy) {
  thread_local std::vector<float> pack, zeros;
  zeros.assign(k, 0.0f);
  if (n == 1) return Avx2OneToken(w, x, y, m, k, accumulate, zeros.data());
  pack.resize(k * kRows + 8);
  for (uint64_t r0 = 0; r0 < m; r0 += kRows) {
    Pack(w, m, k, r0, kBlocks, kRows, zeros.data(), pack.data());
    const int live = static_cast<int>(std::min<uint64_t>(kRows, m - r0));
    for (uint64_t t = 0; t < n; ++t) {
      const float* xr = x + t * k;
      __m256 acc[kBlocks];
      for (int b = 0; b < kBlocks; ++b) acc[b] = _mm256_setzero_ps();
      const float* p = pack.data();
      for (uint64_t i = 0; i < k; ++i, p += kRows) {
        const __m256 xb = _mm256_set1_ps(xr[i]);
        for (int b = 0; b < kBlocks; ++b) {
          acc[b] = _mm256_add_ps(acc[b],
                                 _mm256_mul_ps(_mm256_loadu_ps(p + 8 * b), xb));
        }
      }
      alignas(32) float out[kRows];
      for (int b = 0; b < kBlocks; ++b) _mm256_store_ps(out + 8 * b, acc[b]);
      float* yr = y + t * ldy + r0;
      for (int i = 0; i < live; ++i)
        yr[i] = accumulate ? yr[i] + out[i] : out[i];
    }
  }
}

// Several tokens with AVX-512: sixteen rows per vector, 64 per panel.
// avx512f brings FMA with it; the file is built with -ffp-contract=off
// (BUILD), so the multiply and the add stay two roundings.
constexpr int kRows512 = 64;

__attribute__((target("avx2,avx512f"))) void Avx512(const float* w,
                                                    const float* x, float* y,
                                                    uint64_t m, uint64_t k,
                                                    uint64_t n, bool accumulate,
                                                    uint64_t ldy) {
  thread_local std::vector<float> pack, zeros;
  zeros.assign(k, 0.0f);
  pack.resize(k * kRows512 + 16);
  for (uint64_t r0 = 0; r0 < m; r0 += kRows512) {
    Pack(w, m, k, r0, kRows512 / 8, kRows512, zeros.data(), pack.data());
    const int live = static_cast<int>(std::min<uint64_t>(kRows512, m - r0));
    for (uint64_t t = 0; t < n; ++t) {
      const float* xr = x + t * k;
      __m512 acc[kRows512 / 16];
      for (auto& a : acc) a = _mm512_setzero_ps();
      const float* p = pack.data();
      for (uint64_t i = 0; i < k; ++i, p += kRows512) {
        const __m512 xb = _mm512_set1_ps(xr[i]);
        for (int b = 0; b < kRows512 / 16; ++b) {
          acc[b] = _mm512_add_ps(
              acc[b], _mm512_mul_ps(_mm512_loadu_ps(p + 16 * b), xb));
        }
      }
      alignas(64) float out[kRows512];
      for (int b = 0; b < kRows512 / 16; ++b)
        _mm512_store_ps(out + 16 * b, acc[b]);
      float* yr = y + t * ldy + r0;
      for (int i = 0; i < live; ++i)
        yr[i] = accumulate ? yr[i] + out[i] : out[i];
    }
  }
}

}  // namespace

bool HasAvx2() {
  __builtin_cpu_init();
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
bool HasAvx512() {
  static const bool yes = HasAvx2() && __builtin_cpu_supports("avx512f");
  return yes;
}

namespace {

// Rows [0, m) of W with y's rows `ldy` apart, on the best path this CPU
// has.
void Best(const float* w, const float* x, float* y, uint64_t m, uint64_t k,
          uint64_t n, bool accumulate, uint64_t ldy) {
  if (HasAvx512() && n > 1 && k > 0) {
    Avx512(w, x, y, m, k, n, accumulate, ldy);
  } else if (HasAvx2() && k > 0) {
    Avx2(w, x, y, m, k, n, accumulate, ldy);
  } else {
    Scalar(w, x, y, m, k, n, accumulate, ldy);
  }
}

}  // namespace

void GemmF32Exact(const float* w, const float* x, float* y, uint64_t m,
                  uint64_t k, uint64_t n, bool accumulate,
                  cpu::ThreadPool* pool) {
  // Each output's sum is one thread's, in the same order: splitting the
  // rows over threads leaves every bit as it was.
  constexpr uint64_t kPanel = 64;  // Rows per share: both paths' panels.
  constexpr double kMinMacs =
      1 << 20;  // Below this a thread's wake-up costs more.
  const uint64_t panels = (m + kPanel - 1) / kPanel;
  if (pool == nullptr || pool->size() < 2 || panels < 2 ||
      double(m) * k * n < kMinMacs || panels > (uint64_t{1} << 30)) {
    return Best(w, x, y, m, k, n, accumulate, m);
  }
  pool->ParallelFor(static_cast<int>(panels), [&](int begin, int end) {
    const uint64_t r0 = begin * kPanel;
    const uint64_t r1 = std::min<uint64_t>(m, end * kPanel);
    Best(w + r0 * k, x, y + r0, r1 - r0, k, n, accumulate, m);
  });
}

bool GemmF32ExactWith(const char* isa, const float* w, const float* x, float* y,
                      uint64_t m, uint64_t k, uint64_t n, bool accumulate) {
  const std::string name = isa;
  if (name == "scalar" || k == 0) {
    Scalar(w, x, y, m, k, n, accumulate, m);
  } else if (name == "avx2" && HasAvx2()) {
    Avx2(w, x, y, m, k, n, accumulate, m);
  } else if (name == "avx512" && HasAvx512()) {
    Avx512(w, x, y, m, k, n, accumulate, m);
  } else {
    return false;
  }
  return true;
}

}  // namespace joule::riscv
