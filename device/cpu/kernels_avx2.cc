// AVX2 + FMA kernels. Compiled with -mavx2 -mfma; only called after a
// run-time check.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "device/cpu/cache_tiles.h"
#include "device/cpu/exp_avx2.h"
#include "device/cpu/kernels.h"
#include "device/cpu/tile_walk.h"

namespace joule::cpu {
namespace {

inline float Hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

constexpr int kRowBlock = 8;  // Rows per packed block: one ymm of 32-bit lanes.

// The lanes of the 8-row block starting at `row` that hold real rows (all
// ones): the last block is padded, and padding is never stored.
inline __m256i LiveRows(int rows, int row) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(rows - row),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Up to 2 blocks x 4 sequences: the int32 sums, the weights and their
// magnitudes, and the temporaries fill the 16 ymm registers.
constexpr int kMaxRB = 2, kMaxNT = 4;

// One tile: RB packed blocks (8 rows each) times NT sequences, over every
// group. One 32-byte load holds 4 columns of 8 rows and one broadcast of 4
// activation bytes meets them all. Without VNNI's u8 x s8 dot, each pair
// goes through maddubs with |w| and x carrying w's sign (its int16 pair
// sums, at most 2 x 128 x 127, never saturate) and madd into int32 lanes,
// one per row: no horizontal sums, and the per-group int32 -> fp32 step
// is paid once per 8 rows (the row-major kernel this replaced paid it per
// row and summed each row horizontally: 47 GMAC/s per core). kNibbles:
// each load holds two steps of 4 columns (Q8Weights::nibbles), taken one
// after the other (mask or shift, then - 8) so the registers suffice.
template <int RB, int NT, bool kNibbles>
void RunTile(const Q8Weights& w, int blk, const int8_t* x, const float* xs,
             float* out, int out_stride, const int8_t* prefetch) {
  const int cols = w.cols, gs = w.gs, groups = cols / gs;
  const int steps = kNibbles ? gs / 8 : gs / 4;
  const size_t block_bytes = w.block_bytes();
  const size_t group_bytes = block_bytes / groups;
  const int8_t* wq = w.q + blk * block_bytes;
  const float* wsc = w.scale + size_t(blk) * groups * kRowBlock;
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i eight = _mm256_set1_epi8(8);
  // fp32 sums live in L1, touched once per group.
  alignas(32) float acc[RB][NT][kRowBlock] = {};
  for (int g = 0; g < groups; ++g) {
    __m256i dot[RB][NT];
    for (int j = 0; j < RB; ++j)
      for (int t = 0; t < NT; ++t) dot[j][t] = _mm256_setzero_si256();
    const int8_t* xg = x + g * gs;
    for (int s = 0; s < steps; ++s) {
      __m256i raw[RB];
      for (int j = 0; j < RB; ++j) {
        const size_t at = g * group_bytes + j * block_bytes + s * 32;
        // A cache line holds two steps' loads.
        if (prefetch != nullptr && (s & 1) == 0)
          _mm_prefetch(prefetch + at, _MM_HINT_T1);
        raw[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq + at));
      }
      for (int half = 0; half < (kNibbles ? 2 : 1); ++half) {
        __m256i wv[RB], wa[RB];
        for (int j = 0; j < RB; ++j) {
          wv[j] = raw[j];
          if (kNibbles) {
            const __m256i n = half == 0 ? raw[j] : _mm256_srli_epi16(raw[j], 4);
            wv[j] = _mm256_sub_epi8(_mm256_and_si256(n, low4), eight);
          }
          wa[j] = _mm256_abs_epi8(wv[j]);
        }
        for (int t = 0; t < NT; ++t) {
          int32_t four;
          std::memcpy(&four,
                      xg + size_t(t) * cols + s * (kNibbles ? 8 : 4) + half * 4,
                      4);
          const __m256i xv = _mm256_set1_epi32(four);
          for (int j = 0; j < RB; ++j) {
            const __m256i p = _mm256_madd_epi16(
                _mm256_maddubs_epi16(wa[j], _mm256_sign_epi8(xv, wv[j])), ones);
            dot[j][t] = _mm256_add_epi32(dot[j][t], p);
          }
        }
      }
    }
    for (int j = 0; j < RB; ++j) {
      const __m256 sc =
          _mm256_loadu_ps(wsc + (size_t(j) * groups + g) * kRowBlock);
      for (int t = 0; t < NT; ++t) {
        const __m256 scale =
            _mm256_mul_ps(sc, _mm256_set1_ps(xs[size_t(t) * groups + g]));
        _mm256_store_ps(acc[j][t],
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[j][t]), scale,
                                        _mm256_load_ps(acc[j][t])));
      }
    }
  }
  for (int j = 0; j < RB; ++j) {
    const __m256i live = LiveRows(w.rows, (blk + j) * kRowBlock);
    for (int t = 0; t < NT; ++t)
      _mm256_maskstore_ps(out + size_t(t) * out_stride + (blk + j) * kRowBlock,
                          live, _mm256_load_ps(acc[j][t]));
  }
}

template <int RB, int NT>
struct Q8Tile {
  static void Run(const Q8Weights& w, int blk, const int8_t* x, const float* xs,
                  float* out, int out_stride, const int8_t* prefetch) {
    RunTile<RB, NT, false>(w, blk, x, xs, out, out_stride, prefetch);
  }
};

template <int RB, int NT>
struct Q4Tile {
  static void Run(const Q8Weights& w, int blk, const int8_t* x, const float* xs,
                  float* out, int out_stride, const int8_t* prefetch) {
    RunTile<RB, NT, true>(w, blk, x, xs, out, out_stride, prefetch);
  }
};
constexpr auto kQ8Tiles = MakeTileTable<Q8Tile, kMaxRB, kMaxNT>();
constexpr auto kQ4Tiles = MakeTileTable<Q4Tile, kMaxRB, kMaxNT>();

// Packed weights (row_block kRowBlock), signed activations.
void Q8Gemm(const Q8Weights& w, const int8_t* x, const float* xs, int batch,
            float* out, int out_stride, int block0, int block1) {
  if (w.nibbles) {
    TiledQ8Gemm<kMaxRB, kMaxNT>(kQ4Tiles, w, x, xs, batch, out, out_stride,
                                block0, block1);
  } else {
    TiledQ8Gemm<kMaxRB, kMaxNT>(kQ8Tiles, w, x, xs, batch, out, out_stride,
                                block0, block1);
  }
}

// One fp32 tile: RB packed blocks (8 rows each) times NT sequences, as
// the AVX-512 one: per column, RB loads of 8 rows' weights and NT broadcast
// activations feed RB x NT FMAs into register accumulators, with no
// horizontal sums.
template <int RB, int NT>
struct F32Tile {
  static void Run(const F32Weights& w, int blk, const float* x, float* out,
                  int out_stride, const float* prefetch) {
    const int cols = w.cols;
    const size_t block_floats = size_t(cols) * kRowBlock;
    const float* wp = w.w + blk * block_floats;
    __m256 acc[RB][NT];
    for (int j = 0; j < RB; ++j)
      for (int t = 0; t < NT; ++t) acc[j][t] = _mm256_setzero_ps();
    for (int c = 0; c < cols; ++c) {
      __m256 wv[RB];
      for (int j = 0; j < RB; ++j) {
        const size_t at = j * block_floats + size_t(c) * kRowBlock;
        // A cache line holds two columns' loads.
        if (prefetch != nullptr && (c & 1) == 0)
          _mm_prefetch(prefetch + at, _MM_HINT_T1);
        wv[j] = _mm256_loadu_ps(wp + at);
      }
      for (int t = 0; t < NT; ++t) {
        const __m256 xv = _mm256_set1_ps(x[size_t(t) * cols + c]);
        for (int j = 0; j < RB; ++j)
          acc[j][t] = _mm256_fmadd_ps(wv[j], xv, acc[j][t]);
      }
    }
    for (int j = 0; j < RB; ++j) {
      const __m256i live = LiveRows(w.rows, (blk + j) * kRowBlock);
      for (int t = 0; t < NT; ++t)
        _mm256_maskstore_ps(
            out + size_t(t) * out_stride + (blk + j) * kRowBlock, live,
            acc[j][t]);
    }
  }
};
constexpr auto kF32Tiles = MakeTileTable<F32Tile, kMaxRB, kMaxNT>();

// Packed weights (row_block kRowBlock).
void F32Gemm(const F32Weights& w, const float* x, int batch, float* out,
             int out_stride, int block0, int block1) {
  TiledF32Gemm<kMaxRB, kMaxNT>(kF32Tiles, w, x, batch, out, out_stride, block0,
                               block1);
}

float Dot(const float* a, const float* b, int n) {
  __m256 acc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8)
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  float s = Hsum(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void SwiGlu(float* h, const float* g, int n) {
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(h + i);
    // sigmoid(x) from e = exp(-|x|): 1/(1+e) for x >= 0, e/(1+e) below.
    const __m256 e = ExpNeg(_mm256_or_ps(x, sign));
    const __m256 inv = _mm256_div_ps(one, _mm256_add_ps(one, e));
    const __m256 sig = _mm256_blendv_ps(inv, _mm256_mul_ps(e, inv), x);
    _mm256_storeu_ps(
        h + i, _mm256_mul_ps(_mm256_mul_ps(x, sig), _mm256_loadu_ps(g + i)));
  }
  for (; i < n; ++i) h[i] = h[i] * (1.0f / (1.0f + expf(-h[i]))) * g[i];
}

// Q8_0 activations: max |x| per group, then a rounding conversion.
void Quantize(const float* x, int n, int gs, int8_t* q, float* scale) {
  if (gs % 8 != 0) return QuantizeGroups(x, n, gs, q, scale);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int g = 0; g < n / gs; ++g) {
    const float* xg = x + g * gs;
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < gs; i += 8)
      m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(xg + i)));
    __m128 m4 =
        _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float s = _mm_cvtss_f32(m4) / 127.0f;
    scale[g] = s;
    const __m256 inv = _mm256_set1_ps(s == 0.0f ? 0.0f : 1.0f / s);
    for (int i = 0; i < gs; i += 8) {
      const __m256i v =
          _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xg + i), inv));
      alignas(32) int32_t tmp[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), v);
      for (int j = 0; j < 8; ++j)
        q[g * gs + i + j] = static_cast<int8_t>(tmp[j]);
    }
  }
}

// 8 cache entries as fp32: plain loads, or fp16 or int8 widened on the way
// in.
inline __m256 Load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 Load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 Load8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
      _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
inline float Load1(float v) { return v; }
inline float Load1(uint16_t v) { return _cvtsh_ss(v); }
inline float Load1(int8_t v) { return v; }

template <typename T>
void Attend(const float* q, const T* keys, const T* values, int n, int hs,
            float scale, float* scores, float* out, const T* next_keys,
            const T* next_values) {
  static_assert(kKeyTile == 16, "two ymm of scores per key tile");
  using Tile = CacheTile<T>;
  const int tiles = (n + kKeyTile - 1) / kKeyTile;
  for (int tl = 0; tl < tiles; ++tl) {
    const char* tile = Tile::At(keys, hs, tl);
    const T* kt = Tile::Entries(tile);
    Tile::Prefetch(next_keys, hs, tl);
    // Two chains per half-tile hide the FMA latency.
    __m256 lo0 = _mm256_setzero_ps(), lo1 = lo0, hi0 = lo0, hi1 = lo0;
    int d = 0;
    for (; d + 2 <= hs; d += 2) {
      const __m256 q0 = _mm256_set1_ps(q[d]), q1 = _mm256_set1_ps(q[d + 1]);
      lo0 = _mm256_fmadd_ps(q0, Load8(kt + d * 16), lo0);
      hi0 = _mm256_fmadd_ps(q0, Load8(kt + d * 16 + 8), hi0);
      lo1 = _mm256_fmadd_ps(q1, Load8(kt + d * 16 + 16), lo1);
      hi1 = _mm256_fmadd_ps(q1, Load8(kt + d * 16 + 24), hi1);
    }
    if (d < hs) {
      const __m256 q0 = _mm256_set1_ps(q[d]);
      lo0 = _mm256_fmadd_ps(q0, Load8(kt + d * 16), lo0);
      hi0 = _mm256_fmadd_ps(q0, Load8(kt + d * 16 + 8), hi0);
    }
    __m256 sc_lo = _mm256_set1_ps(scale), sc_hi = sc_lo;
    if constexpr (Tile::kScaled) {
      const float* s = reinterpret_cast<const float*>(tile);
      sc_lo = _mm256_mul_ps(sc_lo, _mm256_loadu_ps(s));
      sc_hi = _mm256_mul_ps(sc_hi, _mm256_loadu_ps(s + 8));
    }
    _mm256_storeu_ps(scores + tl * kKeyTile,
                     _mm256_mul_ps(_mm256_add_ps(lo0, lo1), sc_lo));
    _mm256_storeu_ps(scores + tl * kKeyTile + 8,
                     _mm256_mul_ps(_mm256_add_ps(hi0, hi1), sc_hi));
  }
  // Only the n live positions: the last tile's tail is stale cache.
  float max = -INFINITY;
  for (int t = 0; t < n; ++t) max = std::max(max, scores[t]);
  const float inv = 1.0f / ExpShiftSum(scores, n, max);
  // Each position's value scale joins its weight.
  if constexpr (Tile::kScaled) {
    for (int t = 0; t < n; ++t)
      scores[t] *=
          Tile::Scale(Tile::At(values, hs, t / kKeyTile), t % kKeyTile);
  }
  // Value row of position t.
  auto row = [&](int t) {
    return Tile::Entries(Tile::At(values, hs, t / kKeyTile)) +
           int64_t{t % kKeyTile} * hs;
  };
  const int vec = hs / 8 * 8;
  for (int c = 0; c < vec; c += 32) {
    const int vecs = std::min(4, (vec - c) / 8);
    __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
    for (int t0 = 0; t0 < n; t0 += kKeyTile) {
      const T* v = row(t0) + c;
      if (c == 0) Tile::Prefetch(next_values, hs, t0 / kKeyTile);
      for (int t = t0; t < std::min(n, t0 + kKeyTile); ++t, v += hs) {
        const __m256 p = _mm256_set1_ps(scores[t]);
        o0 = _mm256_fmadd_ps(p, Load8(v), o0);
        if (vecs > 1) o1 = _mm256_fmadd_ps(p, Load8(v + 8), o1);
        if (vecs > 2) o2 = _mm256_fmadd_ps(p, Load8(v + 16), o2);
        if (vecs > 3) o3 = _mm256_fmadd_ps(p, Load8(v + 24), o3);
      }
    }
    const __m256 iv = _mm256_set1_ps(inv);
    _mm256_storeu_ps(out + c, _mm256_mul_ps(o0, iv));
    if (vecs > 1) _mm256_storeu_ps(out + c + 8, _mm256_mul_ps(o1, iv));
    if (vecs > 2) _mm256_storeu_ps(out + c + 16, _mm256_mul_ps(o2, iv));
    if (vecs > 3) _mm256_storeu_ps(out + c + 24, _mm256_mul_ps(o3, iv));
  }
  for (int i = vec; i < hs; ++i) {
    float acc = 0.0f;
    for (int t = 0; t < n; ++t) acc += scores[t] * Load1(row(t)[i]);
    out[i] = acc * inv;
  }
}

void StoreI8(const float* k, const float* v, int hs, int pos, int8_t* keys,
             int8_t* values) {
  StoreI8Position(k, v, hs, pos, keys, values,
                  [](const float* x, int n, int8_t* q, float* scale) {
                    Quantize(x, n, n, q, scale);
                  });
}

void ToF16(const float* x, int n, uint16_t* out, int out_stride) {
  int i = 0;
  if (out_stride == 1) {
    for (; i + 8 <= n; i += 8) {
      _mm_storeu_si128(
          reinterpret_cast<__m128i*>(out + i),
          _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    }
  }
  for (; i < n; ++i)
    out[int64_t{i} * out_stride] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

}  // namespace

const Kernels* Avx2Kernels() {
  static const Kernels k{
      "avx2",          false,    kRowBlock, kRowBlock,      &Quantize,
      &Q8Gemm,         &F32Gemm, &Dot,      &Attend<float>, &Attend<uint16_t>,
      &Attend<int8_t>, &StoreI8, &ToF16,    &SwiGlu};
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                 __builtin_cpu_supports("f16c")
             ? &k
             : nullptr;
}

}  // namespace joule::cpu
