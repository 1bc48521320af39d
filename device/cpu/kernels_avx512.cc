// AVX-512 (F, BW, VL) + VNNI kernels. Compiled with those -m flags; only
// called after a run-time check.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "device/cpu/kernels.h"
#include "device/cpu/kernels_attention.h"

namespace joule::cpu {
namespace {

// Activations arrive as x + 128 (uint8), so vpdpbusd multiplies them with
// the signed weights directly; the +128 adds 128 * sum(w) to each group's
// dot, which is subtracted exactly (sums precomputed per weight group).
template <int NB>
void Q8Rows64(const int8_t* w, const float* ws, const int32_t* wsum, int cols,
              const int8_t* x, const float* xs, float* out, int out_stride,
              int r0, int r1) {
  const int groups = cols / 64;
  for (int r = r0; r < r1; ++r) {
    const int8_t* wr = w + int64_t{r} * cols;
    const float* wsr = ws + int64_t{r} * groups;
    const int32_t* sumr = wsum + int64_t{r} * groups;
    // Two groups per iteration into two accumulator sets, indexed only by
    // constants so all 2 x NB stay in registers: two independent fmadd
    // chains per sequence hide their latency.
    __m512 acc0[NB], acc1[NB];
    for (int b = 0; b < NB; ++b) acc0[b] = acc1[b] = _mm512_setzero_ps();
    int g = 0;
    for (; g + 2 <= groups; g += 2) {
      const __m512i w0 = _mm512_loadu_si512(wr + g * 64);
      const __m512i w1 = _mm512_loadu_si512(wr + g * 64 + 64);
      // The correction lands in lane 0 only (the lanes are summed at the
      // end); every other lane starts at zero.
      const __m512i c0 = _mm512_maskz_set1_epi32(0x0001, -128 * sumr[g]);
      const __m512i c1 = _mm512_maskz_set1_epi32(0x0001, -128 * sumr[g + 1]);
      const float s0 = wsr[g], s1 = wsr[g + 1];
      for (int b = 0; b < NB; ++b) {
        const int8_t* xb = x + int64_t{b} * cols + g * 64;
        const float* xsb = xs + int64_t{b} * groups + g;
        const __m512i d0 = _mm512_dpbusd_epi32(c0, _mm512_loadu_si512(xb), w0);
        const __m512i d1 =
            _mm512_dpbusd_epi32(c1, _mm512_loadu_si512(xb + 64), w1);
        acc0[b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0),
                                  _mm512_set1_ps(s0 * xsb[0]), acc0[b]);
        acc1[b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1),
                                  _mm512_set1_ps(s1 * xsb[1]), acc1[b]);
      }
    }
    if (g < groups) {  // An odd last group.
      const __m512i w0 = _mm512_loadu_si512(wr + g * 64);
      const __m512i c0 = _mm512_maskz_set1_epi32(0x0001, -128 * sumr[g]);
      for (int b = 0; b < NB; ++b) {
        const __m512i d0 = _mm512_dpbusd_epi32(
            c0, _mm512_loadu_si512(x + int64_t{b} * cols + g * 64), w0);
        acc0[b] = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(d0),
            _mm512_set1_ps(wsr[g] * xs[int64_t{b} * groups + g]), acc0[b]);
      }
    }
    for (int b = 0; b < NB; ++b) {
      out[int64_t{b} * out_stride + r] =
          _mm512_reduce_add_ps(_mm512_add_ps(acc0[b], acc1[b]));
    }
  }
}

template <int NB>
void Q8Rows32(const int8_t* w, const float* ws, const int32_t* wsum, int cols,
              const int8_t* x, const float* xs, float* out, int out_stride,
              int r0, int r1) {
  // Group size 32: each 64-byte load covers two groups; lanes 0-7 take the
  // first group's scale and correction, lanes 8-15 the second's.
  const int groups = cols / 32;
  for (int r = r0; r < r1; ++r) {
    const int8_t* wr = w + int64_t{r} * cols;
    const float* wsr = ws + int64_t{r} * groups;
    const int32_t* sumr = wsum + int64_t{r} * groups;
    __m512 acc[NB];
    for (int b = 0; b < NB; ++b) acc[b] = _mm512_setzero_ps();
    const int even = groups & ~1;
    for (int g = 0; g < even; g += 2) {
      const __m512i wv = _mm512_loadu_si512(wr + g * 32);
      const __m512i corr = _mm512_mask_set1_epi32(
          _mm512_maskz_set1_epi32(0x0001, -128 * sumr[g]), 0x0100,
          -128 * sumr[g + 1]);
      for (int b = 0; b < NB; ++b) {
        const __m512i xv = _mm512_loadu_si512(x + int64_t{b} * cols + g * 32);
        const __m512i d = _mm512_dpbusd_epi32(corr, xv, wv);
        const float* xsb = xs + int64_t{b} * groups;
        // Lanes 0-7: group g's scale; 8-15: group g+1's (AVX512F only).
        const __m512 scale = _mm512_castpd_ps(_mm512_insertf64x4(
            _mm512_castps_pd(
                _mm512_castps256_ps512(_mm256_set1_ps(wsr[g] * xsb[g]))),
            _mm256_castps_pd(_mm256_set1_ps(wsr[g + 1] * xsb[g + 1])), 1));
        acc[b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), scale, acc[b]);
      }
    }
    for (int b = 0; b < NB; ++b) {
      float s = _mm512_reduce_add_ps(acc[b]);
      if (groups != even) {  // An odd last group: one 256-bit dot.
        const int g = even;
        const __m256i d = _mm256_dpbusd_epi32(
            _mm256_setzero_si256(),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                x + int64_t{b} * cols + g * 32)),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + g * 32)));
        __m128i d4 = _mm_add_epi32(_mm256_castsi256_si128(d),
                                   _mm256_extracti128_si256(d, 1));
        d4 = _mm_add_epi32(d4, _mm_shuffle_epi32(d4, 0x4E));
        d4 = _mm_add_epi32(d4, _mm_shuffle_epi32(d4, 0xB1));
        const int32_t dot = _mm_cvtsi128_si32(d4) - 128 * sumr[g];
        s += dot * wsr[g] * xs[int64_t{b} * groups + g];
      }
      out[int64_t{b} * out_stride + r] = s;
    }
  }
}

// Any other group size: plain loops on the unsigned form. GCC 12 turns
// this (u8 - 128) x s8 reduction into vpdpbusd without the -128 term when
// it auto-vectorizes it, so vectorization is off here.
__attribute__((optimize("no-tree-vectorize"))) void Q8Generic(
    const int8_t* w, const float* ws, int cols, int gs, const int8_t* x,
    const float* xs, int batch, float* out, int out_stride, int r0, int r1) {
  const int groups = cols / gs;
  for (int r = r0; r < r1; ++r) {
    for (int b = 0; b < batch; ++b) {
      float acc = 0.0f;
      for (int g = 0; g < groups; ++g) {
        int32_t dot = 0;
        for (int k = g * gs; k < (g + 1) * gs; ++k) {
          dot += int32_t{w[int64_t{r} * cols + k]} *
                 (static_cast<uint8_t>(x[int64_t{b} * cols + k]) - 128);
        }
        acc += dot * ws[int64_t{r} * groups + g] * xs[int64_t{b} * groups + g];
      }
      out[int64_t{b} * out_stride + r] = acc;
    }
  }
}

void Q8Gemm(const int8_t* w, const float* ws, const int32_t* wsum, int cols,
            int gs, const int8_t* x, const float* xs, int batch, float* out,
            int out_stride, int r0, int r1) {
  if (gs != 64 && gs != 32) {
    Q8Generic(w, ws, cols, gs, x, xs, batch, out, out_stride, r0, r1);
    return;
  }
  const int groups = cols / gs;
  auto rows = [&](auto nb, int b, int ra, int re) {
    constexpr int NB = decltype(nb)::value;
    if (gs == 64) {
      Q8Rows64<NB>(w, ws, wsum, cols, x + int64_t{b} * cols,
                   xs + int64_t{b} * groups, out + int64_t{b} * out_stride,
                   out_stride, ra, re);
    } else {
      Q8Rows32<NB>(w, ws, wsum, cols, x + int64_t{b} * cols,
                   xs + int64_t{b} * groups, out + int64_t{b} * out_stride,
                   out_stride, ra, re);
    }
  };
  // Blocks of rows, each finished for the whole batch before the next: the
  // block stays in L1 while every group of sequences uses it, so weights
  // come from memory once per step.
  for (int rb = r0; rb < r1; rb += 16) {
    const int re = std::min(r1, rb + 16);
    int b = 0;
    for (; b + 8 <= batch; b += 8)
      rows(std::integral_constant<int, 8>(), b, rb, re);
    for (; b + 4 <= batch; b += 4)
      rows(std::integral_constant<int, 4>(), b, rb, re);
    for (; b < batch; ++b) rows(std::integral_constant<int, 1>(), b, rb, re);
  }
}

// Activations to x + 128 (uint8) with per-group scales.
__attribute__((optimize("no-tree-vectorize"))) void Quantize(const float* x,
                                                             int n, int gs,
                                                             int8_t* q,
                                                             float* scale) {
  if (gs % 16 != 0) {
    QuantizeGroups(x, n, gs, q, scale);
    for (int i = 0; i < n; ++i)
      q[i] = static_cast<int8_t>(static_cast<uint8_t>(q[i] + 128));
    return;
  }
  for (int g = 0; g < n / gs; ++g) {
    const float* xg = x + g * gs;
    __m512 m = _mm512_setzero_ps();
    for (int i = 0; i < gs; i += 16)
      m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(xg + i)));
    const float s = _mm512_reduce_max_ps(m) / 127.0f;
    scale[g] = s;
    const __m512 inv = _mm512_set1_ps(s == 0.0f ? 0.0f : 1.0f / s);
    const __m512i bias = _mm512_set1_epi32(128);
    for (int i = 0; i < gs; i += 16) {
      const __m512i v = _mm512_add_epi32(
          _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xg + i), inv)),
          bias);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + g * gs + i),
                       _mm512_cvtepi32_epi8(v));
    }
  }
}

template <int NB>
void F32Rows(const float* w, int cols, const float* x, float* out,
             int out_stride, int r0, int r1) {
  if constexpr (NB == 1) {
    // One sequence: four independent chains hide the FMA latency.
    for (int r = r0; r < r1; ++r) {
      const float* wr = w + int64_t{r} * cols;
      __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      int k = 0;
      for (; k + 64 <= cols; k += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(wr + k), _mm512_loadu_ps(x + k),
                             a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(wr + k + 16),
                             _mm512_loadu_ps(x + k + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(wr + k + 32),
                             _mm512_loadu_ps(x + k + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(wr + k + 48),
                             _mm512_loadu_ps(x + k + 48), a3);
      }
      for (; k + 16 <= cols; k += 16) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(wr + k), _mm512_loadu_ps(x + k),
                             a0);
      }
      float s = _mm512_reduce_add_ps(
          _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
      for (; k < cols; ++k) s += wr[k] * x[k];
      out[r] = s;
    }
    return;
  }
  for (int r = r0; r < r1; ++r) {
    const float* wr = w + int64_t{r} * cols;
    __m512 acc[NB];
    for (int b = 0; b < NB; ++b) acc[b] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= cols; k += 16) {
      const __m512 wv = _mm512_loadu_ps(wr + k);
      for (int b = 0; b < NB; ++b) {
        acc[b] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + int64_t{b} * cols + k),
                                 acc[b]);
      }
    }
    for (int b = 0; b < NB; ++b) {
      float s = _mm512_reduce_add_ps(acc[b]);
      for (int j = k; j < cols; ++j) s += wr[j] * x[int64_t{b} * cols + j];
      out[int64_t{b} * out_stride + r] = s;
    }
  }
}

void F32Gemm(const float* w, int cols, const float* x, int batch, float* out,
             int out_stride, int r0, int r1) {
  for (int rb = r0; rb < r1; rb += 8) {  // Row blocks stay in L1 (see Q8Gemm).
    const int re = std::min(r1, rb + 8);
    int b = 0;
    for (; b + 8 <= batch; b += 8) {
      F32Rows<8>(w, cols, x + int64_t{b} * cols, out + int64_t{b} * out_stride,
                 out_stride, rb, re);
    }
    for (; b + 4 <= batch; b += 4) {
      F32Rows<4>(w, cols, x + int64_t{b} * cols, out + int64_t{b} * out_stride,
                 out_stride, rb, re);
    }
    for (; b < batch; ++b) {
      F32Rows<1>(w, cols, x + int64_t{b} * cols, out + int64_t{b} * out_stride,
                 out_stride, rb, re);
    }
  }
}

float Dot(const float* a, const float* b, int n) {
  __m512 acc = _mm512_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16)
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  float s = _mm512_reduce_add_ps(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void Axpy(float a, const float* x, float* y, int n) {
  const __m512 av = _mm512_set1_ps(a);
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i),
                                            _mm512_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

const Kernels* Avx512VnniKernels() {
  static const Kernels k{"avx512vnni",
                         true,
                         &Quantize,
                         &Q8Gemm,
                         &F32Gemm,
                         &Dot,
                         &Axpy,
                         &AttendWith<&Dot, &Axpy>,
                         Avx2Kernels()->swiglu};
  __builtin_cpu_init();
  const bool ok = __builtin_cpu_supports("avx512f") &&
                  __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") &&
                  __builtin_cpu_supports("avx512vnni");
  return ok ? &k : nullptr;
}

}  // namespace joule::cpu
