#include <algorithm>
#include <cmath>
#include <cstring>

#include "device/cpu/cache_tiles.h"
#include "device/cpu/kernels.h"

namespace joule::cpu {
namespace {

// Row-major weight k of a row starting at `wr`; nibbles hold columns
// k and k + 4 of each 8 in one byte (Q8Weights::nibbles).
inline int32_t Weight(const Q8Weights& w, const int8_t* wr, int k) {
  if (!w.nibbles) return wr[k];
  const auto byte = static_cast<uint8_t>(wr[k / 8 * 4 + k % 4]);
  return int32_t{k % 8 < 4 ? byte & 0x0f : byte >> 4} - 8;
}

// Row-major weights (row_block 1), signed activations.
void Q8Gemm(const Q8Weights& w, const int8_t* x, const float* xs, int batch,
            float* out, int out_stride, int r0, int r1) {
  const int cols = w.cols, gs = w.gs, groups = cols / gs;
  for (int r = r0; r < r1; ++r) {
    const int8_t* wr = w.q + int64_t{r} * cols / (w.nibbles ? 2 : 1);
    const float* wsr = w.scale + int64_t{r} * groups;
    for (int b = 0; b < batch; ++b) {
      const int8_t* xb = x + int64_t{b} * cols;
      const float* xsb = xs + int64_t{b} * groups;
      float acc = 0.0f;
      for (int g = 0; g < groups; ++g) {
        int32_t dot = 0;
        for (int k = g * gs; k < (g + 1) * gs; ++k)
          dot += Weight(w, wr, k) * xb[k];
        acc += dot * wsr[g] * xsb[g];
      }
      out[int64_t{b} * out_stride + r] = acc;
    }
  }
}

// Any row_block: row r, column k is at [r / RB][k][r % RB].
void F32Gemm(const F32Weights& w, const float* x, int batch, float* out,
             int out_stride, int block0, int block1) {
  const int RB = w.row_block, cols = w.cols;
  const int r1 = std::min(w.rows, block1 * RB);
  for (int r = block0 * RB; r < r1; ++r) {
    const float* wr = w.w + int64_t{r / RB} * cols * RB + r % RB;
    for (int b = 0; b < batch; ++b) {
      float acc = 0.0f;
      for (int k = 0; k < cols; ++k)
        acc += wr[int64_t{k} * RB] * x[int64_t{b} * cols + k];
      out[int64_t{b} * out_stride + r] = acc;
    }
  }
}

float Dot(const float* a, const float* b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline float Load(float v) { return v; }
inline float Load(uint16_t v) { return HalfToFloat(v); }
inline float Load(int8_t v) { return v; }

template <typename T>
// Prefetching is left to the hardware here.
void Attend(const float* q, const T* keys, const T* values, int n, int hs,
            float scale, float* scores, float* out, const T* /*next_keys*/,
            const T* /*next_values*/) {
  using Tile = CacheTile<T>;
  float max = -INFINITY;
  for (int t = 0; t < n; ++t) {
    const char* tile = Tile::At(keys, hs, t / kKeyTile);
    const T* kt = Tile::Entries(tile) + t % kKeyTile;
    float s = 0.0f;
    for (int d = 0; d < hs; ++d) s += q[d] * Load(kt[d * kKeyTile]);
    scores[t] = s * Tile::Scale(tile, t % kKeyTile) * scale;
    max = std::max(max, scores[t]);
  }
  float sum = 0.0f;
  for (int t = 0; t < n; ++t) {
    scores[t] = expf(scores[t] - max);
    sum += scores[t];
  }
  const float inv = 1.0f / sum;
  for (int i = 0; i < hs; ++i) out[i] = 0.0f;
  for (int t = 0; t < n; ++t) {
    const char* tile = Tile::At(values, hs, t / kKeyTile);
    const float p = scores[t] * inv * Tile::Scale(tile, t % kKeyTile);
    const T* v = Tile::Entries(tile) + int64_t{t % kKeyTile} * hs;
    for (int i = 0; i < hs; ++i) out[i] += p * Load(v[i]);
  }
}

void StoreI8(const float* k, const float* v, int hs, int pos, int8_t* keys,
             int8_t* values) {
  StoreI8Position(k, v, hs, pos, keys, values,
                  [](const float* x, int n, int8_t* q, float* scale) {
                    QuantizeGroups(x, n, n, q, scale);
                  });
}

void ToF16(const float* x, int n, uint16_t* out, int out_stride) {
  for (int i = 0; i < n; ++i) out[int64_t{i} * out_stride] = FloatToHalf(x[i]);
}

void SwiGlu(float* h, const float* g, int n) {
  for (int i = 0; i < n; ++i)
    h[i] = h[i] * (1.0f / (1.0f + expf(-h[i]))) * g[i];
}

}  // namespace

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  x &= 0x7FFFFFFF;
  if (x >= 0x7F800000) {  // Inf or NaN (NaN stays quiet).
    return sign | 0x7C00 | (x > 0x7F800000 ? 0x200 : 0);
  }
  if (x >= 0x477FF000) return sign | 0x7C00;  // Rounds past 65504: Inf.
  if (x < 0x38800000) {  // Below 2^-14: subnormal half (or zero).
    // Scale into the subnormal range with the FPU, which rounds to even.
    const float sub = std::fabs(f) * 16777216.0f;  // 2^24 = 1 / 2^-24.
    return sign | static_cast<uint16_t>(std::nearbyint(sub));
  }
  // Normal: drop 13 mantissa bits, rounding to nearest even.
  const uint32_t rounded = x + 0xFFF + ((x >> 13) & 1);
  return sign | static_cast<uint16_t>((rounded - 0x38000000) >> 13);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
  float f;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(man), -24);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    bits |= sign;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  const uint32_t bits = exp == 31 ? sign | 0x7F800000 | (man << 13)
                                  : sign | ((exp + 112) << 23) | (man << 13);
  std::memcpy(&f, &bits, 4);
  return f;
}

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
  static const Kernels k{"generic",
                         false,
                         1,
                         1,
                         &QuantizeGroups,
                         &Q8Gemm,
                         &F32Gemm,
                         &Dot,
                         &Attend<float>,
                         &Attend<uint16_t>,
                         &Attend<int8_t>,
                         &StoreI8,
                         &ToF16,
                         &SwiGlu};
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
