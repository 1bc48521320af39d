// AVX-512 (F, BW, VL) + VNNI kernels. Compiled with those -m flags; only
// called after a run-time check.
#include <immintrin.h>

#include <type_traits>

#include "device/cpu/kernels.h"

namespace joule::cpu {
namespace {

// Exact int32 dot of 64 int8 pairs as 16 lanes: vpdpbusd on |w| (unsigned)
// and x negated where w is negative.
inline __m512i Dot64(__m512i acc, __m512i w, __m512i x) {
  const __mmask64 neg = _mm512_movepi8_mask(w);
  const __m512i sx = _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x);
  return _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(w), sx);
}

template <int NB>
void Q8Rows64(const int8_t* w, const float* ws, int cols, const int8_t* x, const float* xs,
              float* out, int out_stride, int r0, int r1) {
  // Group size 64: one vpdpbusd per group and sequence.
  const int groups = cols / 64;
  for (int r = r0; r < r1; ++r) {
    const int8_t* wr = w + int64_t{r} * cols;
    const float* wsr = ws + int64_t{r} * groups;
    __m512 acc[NB];
    for (int b = 0; b < NB; ++b) acc[b] = _mm512_setzero_ps();
    for (int g = 0; g < groups; ++g) {
      const __m512i wv = _mm512_loadu_si512(wr + g * 64);
      for (int b = 0; b < NB; ++b) {
        const __m512i xv = _mm512_loadu_si512(x + int64_t{b} * cols + g * 64);
        const __m512i d = Dot64(_mm512_setzero_si512(), wv, xv);
        acc[b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d),
                                 _mm512_set1_ps(wsr[g] * xs[int64_t{b} * groups + g]), acc[b]);
      }
    }
    for (int b = 0; b < NB; ++b) out[int64_t{b} * out_stride + r] = _mm512_reduce_add_ps(acc[b]);
  }
}

template <int NB>
void Q8Rows32(const int8_t* w, const float* ws, int cols, const int8_t* x, const float* xs,
              float* out, int out_stride, int r0, int r1) {
  // Group size 32: each 64-byte load covers two groups; lanes 0-7 take the
  // first group's scale and lanes 8-15 the second's.
  const int groups = cols / 32;
  for (int r = r0; r < r1; ++r) {
    const int8_t* wr = w + int64_t{r} * cols;
    const float* wsr = ws + int64_t{r} * groups;
    __m512 acc[NB];
    for (int b = 0; b < NB; ++b) acc[b] = _mm512_setzero_ps();
    int g = 0;
    for (; g + 2 <= groups; g += 2) {
      const __m512i wv = _mm512_loadu_si512(wr + g * 32);
      for (int b = 0; b < NB; ++b) {
        const __m512i xv = _mm512_loadu_si512(x + int64_t{b} * cols + g * 32);
        const __m512i d = Dot64(_mm512_setzero_si512(), wv, xv);
        const float* xsb = xs + int64_t{b} * groups;
        // Lanes 0-7: group g's scale; 8-15: group g+1's (AVX512F only).
        const __m512 scale = _mm512_castpd_ps(_mm512_insertf64x4(
            _mm512_castps_pd(_mm512_castps256_ps512(_mm256_set1_ps(wsr[g] * xsb[g]))),
            _mm256_castps_pd(_mm256_set1_ps(wsr[g + 1] * xsb[g + 1])), 1));
        acc[b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), scale, acc[b]);
      }
    }
    for (int b = 0; b < NB; ++b) {
      float s = _mm512_reduce_add_ps(acc[b]);
      if (g < groups) {  // An odd last group.
        int32_t dot = 0;
        for (int k = g * 32; k < cols; ++k) dot += int32_t{wr[k]} * x[int64_t{b} * cols + k];
        s += dot * wsr[g] * xs[int64_t{b} * groups + g];
      }
      out[int64_t{b} * out_stride + r] = s;
    }
  }
}

void Q8Gemm(const int8_t* w, const float* ws, int cols, int gs, const int8_t* x, const float* xs,
            int batch, float* out, int out_stride, int r0, int r1) {
  if (gs != 64 && gs != 32) {
    const Kernels* avx2 = Avx2Kernels();
    (avx2 ? *avx2 : GenericKernels()).q8_gemm(w, ws, cols, gs, x, xs, batch, out, out_stride, r0, r1);
    return;
  }
  const int groups = cols / gs;
  auto rows = [&](auto nb, int b) {
    constexpr int NB = decltype(nb)::value;
    if (gs == 64) {
      Q8Rows64<NB>(w, ws, cols, x + int64_t{b} * cols, xs + int64_t{b} * groups,
                   out + int64_t{b} * out_stride, out_stride, r0, r1);
    } else {
      Q8Rows32<NB>(w, ws, cols, x + int64_t{b} * cols, xs + int64_t{b} * groups,
                   out + int64_t{b} * out_stride, out_stride, r0, r1);
    }
  };
  int b = 0;
  for (; b + 8 <= batch; b += 8) rows(std::integral_constant<int, 8>(), b);
  for (; b + 4 <= batch; b += 4) rows(std::integral_constant<int, 4>(), b);
  for (; b < batch; ++b) rows(std::integral_constant<int, 1>(), b);
}

template <int NB>
void F32Rows(const float* w, int cols, const float* x, float* out, int out_stride, int r0,
             int r1) {
  for (int r = r0; r < r1; ++r) {
    const float* wr = w + int64_t{r} * cols;
    __m512 acc[NB];
    for (int b = 0; b < NB; ++b) acc[b] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= cols; k += 16) {
      const __m512 wv = _mm512_loadu_ps(wr + k);
      for (int b = 0; b < NB; ++b) {
        acc[b] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + int64_t{b} * cols + k), acc[b]);
      }
    }
    for (int b = 0; b < NB; ++b) {
      float s = _mm512_reduce_add_ps(acc[b]);
      for (int j = k; j < cols; ++j) s += wr[j] * x[int64_t{b} * cols + j];
      out[int64_t{b} * out_stride + r] = s;
    }
  }
}

void F32Gemm(const float* w, int cols, const float* x, int batch, float* out, int out_stride,
             int r0, int r1) {
  int b = 0;
  for (; b + 8 <= batch; b += 8) {
    F32Rows<8>(w, cols, x + int64_t{b} * cols, out + int64_t{b} * out_stride, out_stride, r0, r1);
  }
  for (; b + 4 <= batch; b += 4) {
    F32Rows<4>(w, cols, x + int64_t{b} * cols, out + int64_t{b} * out_stride, out_stride, r0, r1);
  }
  for (; b < batch; ++b) {
    F32Rows<1>(w, cols, x + int64_t{b} * cols, out + int64_t{b} * out_stride, out_stride, r0, r1);
  }
}

float Dot(const float* a, const float* b, int n) {
  __m512 acc = _mm512_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  float s = _mm512_reduce_add_ps(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void Axpy(float a, const float* x, float* y, int n) {
  const __m512 av = _mm512_set1_ps(a);
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

const Kernels* Avx512VnniKernels() {
  static const Kernels k{"avx512vnni", &Q8Gemm, &F32Gemm, &Dot, &Axpy};
  __builtin_cpu_init();
  const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  return ok ? &k : nullptr;
}

}  // namespace joule::cpu
