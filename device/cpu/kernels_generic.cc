#include <algorithm>
#include <cmath>

#include "device/cpu/kernels.h"

namespace joule::cpu {
namespace {

// Row-major weights (row_block 1), signed activations.
void Q8Gemm(const Q8Weights& w, const int8_t* x, const float* xs, int batch,
            float* out, int out_stride, int r0, int r1) {
  const int cols = w.cols, gs = w.gs, groups = cols / gs;
  for (int r = r0; r < r1; ++r) {
    const int8_t* wr = w.q + int64_t{r} * cols;
    const float* wsr = w.scale + int64_t{r} * groups;
    for (int b = 0; b < batch; ++b) {
      const int8_t* xb = x + int64_t{b} * cols;
      const float* xsb = xs + int64_t{b} * groups;
      float acc = 0.0f;
      for (int g = 0; g < groups; ++g) {
        int32_t dot = 0;
        for (int k = g * gs; k < (g + 1) * gs; ++k)
          dot += int32_t{wr[k]} * xb[k];
        acc += dot * wsr[g] * xsb[g];
      }
      out[int64_t{b} * out_stride + r] = acc;
    }
  }
}

void F32Gemm(const float* w, int cols, const float* x, int batch, float* out,
             int out_stride, int r0, int r1) {
  for (int r = r0; r < r1; ++r) {
    for (int b = 0; b < batch; ++b) {
      float acc = 0.0f;
      for (int k = 0; k < cols; ++k)
        acc += w[int64_t{r} * cols + k] * x[int64_t{b} * cols + k];
      out[int64_t{b} * out_stride + r] = acc;
    }
  }
}

float Dot(const float* a, const float* b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void Axpy(float a, const float* x, float* y, int n) {
  for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

void Attend(const float* q, const float* keys, const float* values, int n,
            int hs, float scale, float* scores, float* out) {
  float max = -INFINITY;
  for (int t = 0; t < n; ++t) {
    const float* kt =
        keys + int64_t{t / kKeyTile} * hs * kKeyTile + t % kKeyTile;
    float s = 0.0f;
    for (int d = 0; d < hs; ++d) s += q[d] * kt[d * kKeyTile];
    scores[t] = s * scale;
    max = std::max(max, scores[t]);
  }
  float sum = 0.0f;
  for (int t = 0; t < n; ++t) {
    scores[t] = expf(scores[t] - max);
    sum += scores[t];
  }
  const float inv = 1.0f / sum;
  for (int i = 0; i < hs; ++i) out[i] = 0.0f;
  for (int t = 0; t < n; ++t)
    Axpy(scores[t] * inv, values + int64_t{t} * hs, out, hs);
}

void SwiGlu(float* h, const float* g, int n) {
  for (int i = 0; i < n; ++i)
    h[i] = h[i] * (1.0f / (1.0f + expf(-h[i]))) * g[i];
}

}  // namespace

void QuantizeGroups(const float* x, int n, int gs, int8_t* q, float* scale) {
  for (int g = 0; g < n / gs; ++g) {
    float wmax = 0.0f;
    for (int i = 0; i < gs; ++i)
      wmax = std::fmax(wmax, std::fabs(x[g * gs + i]));
    const float s = wmax / 127.0f;
    const float inv = s == 0.0f ? 0.0f : 1.0f / s;
    scale[g] = s;
    // Round to nearest even (as SIMD conversions do), not through libm.
    for (int i = 0; i < gs; ++i)
      q[g * gs + i] = static_cast<int8_t>(std::nearbyint(x[g * gs + i] * inv));
  }
}

const Kernels& GenericKernels() {
  static const Kernels k{"generic", false, 1,     &QuantizeGroups, &Q8Gemm,
                         &F32Gemm,  &Dot,  &Axpy, &Attend,         &SwiGlu};
  return k;
}

const Kernels& SelectKernels(const std::string& isa) {
  if (isa != "avx2" && isa != "generic") {
    if (const Kernels* k = Avx512VnniKernels()) return *k;
  }
  if (isa != "generic") {
    if (const Kernels* k = Avx2Kernels()) return *k;
  }
  return GenericKernels();
}

}  // namespace joule::cpu
