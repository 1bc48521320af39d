// AVX-512 (F, BW, VL) + VNNI kernels. Compiled with those -m flags; only
// called after a run-time check.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

#include "device/cpu/cache_tiles.h"
#include "device/cpu/exp_avx2.h"
#include "device/cpu/kernels.h"
#include "device/cpu/tile_walk.h"

namespace joule::cpu {
namespace {

constexpr int kRowBlock = 16;  // Rows per packed block: one zmm of int32.

// Lanes of the 16-row block starting at `row` that hold real rows: the
// last block is padded, and padding is never stored.
inline __mmask16 LiveRows(int rows, int row) {
  return rows - row >= kRowBlock ? 0xFFFF : (1u << (rows - row)) - 1;
}

// acc += 4-byte dot products of u8 x and s8 w, lane by lane. Inline asm
// rather than _mm512_dpbusd_epi32: with the builtin GCC 12 copies every
// accumulator to a new register and back on each step of a tile (24 moves
// per 12 vpdpbusd in Q8Tile<2, 6>), which halved the tile's speed.
inline void Dpbusd(__m512i& acc, __m512i x, __m512i w) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));
}

// One tile: RB packed blocks (16 rows each) times NT sequences, over every
// group. Activations arrive as x + 128 (uint8), so vpdpbusd multiplies
// them with the signed weights directly; each group's int32 sums start
// from the packed -128 x sum(w), which cancels the +128 exactly. Per group
// and (block, sequence) the sums become fp32 once: with 64-wide groups, 16
// vpdpbusd per cvt+mul+fma. The RB x NT int32 accumulators, RB weight
// vectors and one broadcast stay in the 32 zmm registers (RB x NT <= 24).
// kNibbles: each load holds two steps of 4 columns (Q8Weights::nibbles),
// split by a mask and a shift and re-centred by - 8: the same dot products
// from half the bytes.
template <int RB, int NT, bool kNibbles>
void RunTile(const Q8Weights& w, int blk, const uint8_t* x, const float* xs,
             float* out, int out_stride, const int8_t* prefetch) {
  const int cols = w.cols, gs = w.gs, groups = cols / gs;
  const int steps = kNibbles ? gs / 8 : gs / 4;
  const size_t block_bytes = w.block_bytes();
  const size_t group_bytes = block_bytes / groups;
  const int8_t* wq = w.q + blk * block_bytes;
  const float* wsc = w.scale + size_t(blk) * groups * kRowBlock;
  const int32_t* wb = w.bias + size_t(blk) * groups * kRowBlock;
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i eight = _mm512_set1_epi8(8);
  // fp32 sums live in L1, touched once per group: registers are for the
  // int32 sums.
  alignas(64) float acc[RB][NT][kRowBlock] = {};
  for (int g = 0; g < groups; ++g) {
    __m512i dot[RB][NT];
    for (int j = 0; j < RB; ++j) {
      const __m512i b =
          _mm512_load_si512(wb + (size_t(j) * groups + g) * kRowBlock);
      for (int t = 0; t < NT; ++t) dot[j][t] = b;
    }
    const uint8_t* xg = x + g * gs;
    for (int s = 0; s < steps; ++s) {
      __m512i wv[RB], hi[RB];
      for (int j = 0; j < RB; ++j) {
        const size_t at = g * group_bytes + j * block_bytes + s * 64;
        if (prefetch != nullptr) _mm_prefetch(prefetch + at, _MM_HINT_T1);
        wv[j] = _mm512_load_si512(wq + at);
        if (kNibbles) {
          hi[j] = _mm512_sub_epi8(
              _mm512_and_si512(_mm512_srli_epi16(wv[j], 4), low4), eight);
          wv[j] = _mm512_sub_epi8(_mm512_and_si512(wv[j], low4), eight);
        }
      }
      for (int t = 0; t < NT; ++t) {
        const uint8_t* xt = xg + size_t(t) * cols + s * (kNibbles ? 8 : 4);
        int32_t four;
        std::memcpy(&four, xt, 4);
        const __m512i xv = _mm512_set1_epi32(four);
        for (int j = 0; j < RB; ++j) Dpbusd(dot[j][t], xv, wv[j]);
        if (kNibbles) {
          std::memcpy(&four, xt + 4, 4);
          const __m512i xh = _mm512_set1_epi32(four);
          for (int j = 0; j < RB; ++j) Dpbusd(dot[j][t], xh, hi[j]);
        }
      }
    }
    for (int j = 0; j < RB; ++j) {
      const __m512 sc =
          _mm512_load_ps(wsc + (size_t(j) * groups + g) * kRowBlock);
      for (int t = 0; t < NT; ++t) {
        const __m512 scale =
            _mm512_mul_ps(sc, _mm512_set1_ps(xs[size_t(t) * groups + g]));
        _mm512_store_ps(acc[j][t],
                        _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[j][t]), scale,
                                        _mm512_load_ps(acc[j][t])));
      }
    }
  }
  for (int j = 0; j < RB; ++j) {
    const int row = (blk + j) * kRowBlock;
    for (int t = 0; t < NT; ++t)
      _mm512_mask_storeu_ps(out + size_t(t) * out_stride + row,
                            LiveRows(w.rows, row), _mm512_load_ps(acc[j][t]));
  }
}

template <int RB, int NT>
struct Q8Tile {
  static void Run(const Q8Weights& w, int blk, const uint8_t* x,
                  const float* xs, float* out, int out_stride,
                  const int8_t* prefetch) {
    RunTile<RB, NT, false>(w, blk, x, xs, out, out_stride, prefetch);
  }
};

template <int RB, int NT>
struct Q4Tile {
  static void Run(const Q8Weights& w, int blk, const uint8_t* x,
                  const float* xs, float* out, int out_stride,
                  const int8_t* prefetch) {
    RunTile<RB, NT, true>(w, blk, x, xs, out, out_stride, prefetch);
  }
};

// Any tile from 2 x 4 to 4 x 6 measured within 10% (cpu_kernels_bench);
// 8 sequences split the common batches (8, 16, 32) evenly.
constexpr int kMaxRB = 2, kMaxNT = 8;

constexpr auto kQ8Tiles = MakeTileTable<Q8Tile, kMaxRB, kMaxNT>();
constexpr auto kQ4Tiles = MakeTileTable<Q4Tile, kMaxRB, kMaxNT>();

void Q8Gemm(const Q8Weights& w, const int8_t* x, const float* xs, int batch,
            float* out, int out_stride, int block0, int block1) {
  const auto* xu = reinterpret_cast<const uint8_t*>(x);
  if (w.nibbles) {
    TiledQ8Gemm<kMaxRB, kMaxNT>(kQ4Tiles, w, xu, xs, batch, out, out_stride,
                                block0, block1);
  } else {
    TiledQ8Gemm<kMaxRB, kMaxNT>(kQ8Tiles, w, xu, xs, batch, out, out_stride,
                                block0, block1);
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

// One fp32 tile: RB packed blocks (16 rows each) times NT sequences. Per
// column, RB loads of 16 rows' weights and NT broadcast activations feed
// RB x NT FMAs into accumulators that stay in registers: no horizontal
// sums, and from 2 x 2 up the loads no longer bound the FMAs (the
// row-major kernel this replaced did 9 loads and 8 FMAs per column and 8
// horizontal sums per row: stories110M, 16 sequences, 280 -> 716 tok/s).
template <int RB, int NT>
struct F32Tile {
  static void Run(const F32Weights& w, int blk, const float* x, float* out,
                  int out_stride, const float* prefetch) {
    const int cols = w.cols;
    const size_t block_floats = size_t(cols) * kRowBlock;
    const float* wp = w.w + blk * block_floats;
    __m512 acc[RB][NT];
    for (int j = 0; j < RB; ++j)
      for (int t = 0; t < NT; ++t) acc[j][t] = _mm512_setzero_ps();
    for (int c = 0; c < cols; ++c) {
      __m512 wv[RB];
      for (int j = 0; j < RB; ++j) {
        const size_t at = j * block_floats + size_t(c) * kRowBlock;
        if (prefetch != nullptr) _mm_prefetch(prefetch + at, _MM_HINT_T1);
        wv[j] = _mm512_load_ps(wp + at);
      }
      for (int t = 0; t < NT; ++t) {
        const __m512 xv = _mm512_set1_ps(x[size_t(t) * cols + c]);
        for (int j = 0; j < RB; ++j)
          acc[j][t] = _mm512_fmadd_ps(wv[j], xv, acc[j][t]);
      }
    }
    for (int j = 0; j < RB; ++j) {
      const int row = (blk + j) * kRowBlock;
      for (int t = 0; t < NT; ++t)
        _mm512_mask_storeu_ps(out + size_t(t) * out_stride + row,
                              LiveRows(w.rows, row), acc[j][t]);
    }
  }
};
constexpr auto kF32Tiles = MakeTileTable<F32Tile, kMaxRB, kMaxNT>();

void F32Gemm(const F32Weights& w, const float* x, int batch, float* out,
             int out_stride, int block0, int block1) {
  TiledF32Gemm<kMaxRB, kMaxNT>(kF32Tiles, w, x, batch, out, out_stride, block0,
                               block1);
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

// 16 cache entries as fp32: plain loads, or fp16 or int8 widened on the way
// in.
inline __m512 Load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 Load16(const uint16_t* p) {
  return _mm512_cvtph_ps(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 Load16(const int8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
inline __m512 Load16(const float* p, __mmask16 m) {
  return _mm512_maskz_loadu_ps(m, p);
}
inline __m512 Load16(const uint16_t* p, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
inline __m512 Load16(const int8_t* p, __mmask16 m) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p)));
}

template <typename T>
void Attend(const float* q, const T* keys, const T* values, int n, int hs,
            float scale, float* scores, float* out, const T* next_keys,
            const T* next_values) {
  static_assert(kKeyTile == 16, "one zmm of scores per key tile");
  using Tile = CacheTile<T>;
  const int tiles = (n + kKeyTile - 1) / kKeyTile;
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  for (int tl = 0; tl < tiles; ++tl) {
    const char* tile = Tile::At(keys, hs, tl);
    const T* kt = Tile::Entries(tile);
    Tile::Prefetch(next_keys, hs, tl);
    // Four chains over the dimensions hide the FMA latency.
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int d = 0;
    for (; d + 4 <= hs; d += 4) {
      a0 = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), Load16(kt + d * 16), a0);
      a1 = _mm512_fmadd_ps(_mm512_set1_ps(q[d + 1]), Load16(kt + (d + 1) * 16),
                           a1);
      a2 = _mm512_fmadd_ps(_mm512_set1_ps(q[d + 2]), Load16(kt + (d + 2) * 16),
                           a2);
      a3 = _mm512_fmadd_ps(_mm512_set1_ps(q[d + 3]), Load16(kt + (d + 3) * 16),
                           a3);
    }
    for (; d < hs; ++d) {
      a0 = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), Load16(kt + d * 16), a0);
    }
    __m512 sc = _mm512_set1_ps(scale);
    if constexpr (Tile::kScaled) {
      sc = _mm512_mul_ps(sc,
                         _mm512_loadu_ps(reinterpret_cast<const float*>(tile)));
    }
    const __m512 s = _mm512_mul_ps(
        _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)), sc);
    _mm512_storeu_ps(scores + tl * kKeyTile, s);
    // Positions past n in the last tile hold stale cache: not in the max.
    const int live = std::min(kKeyTile, n - tl * kKeyTile);
    vmax = _mm512_mask_max_ps(vmax, (1u << live) - 1, vmax, s);
  }
  const float inv = 1.0f / ExpShiftSum(scores, n, _mm512_reduce_max_ps(vmax));
  // Each position's value scale joins its weight.
  if constexpr (Tile::kScaled) {
    for (int tl = 0; tl < tiles; ++tl) {
      const __mmask16 live = (1u << std::min(kKeyTile, n - tl * kKeyTile)) - 1;
      float* st = scores + tl * kKeyTile;
      _mm512_mask_storeu_ps(
          st, live,
          _mm512_mul_ps(_mm512_maskz_loadu_ps(live, st),
                        _mm512_loadu_ps(reinterpret_cast<const float*>(
                            Tile::At(values, hs, tl)))));
    }
  }
  // out = sum of p_t v_t, up to four 16-wide chunks of the head at a time.
  for (int c = 0; c < hs; c += 64) {
    const int width = std::min(64, hs - c);
    const int vecs = (width + 15) / 16;
    __mmask16 m[4];
    for (int i = 0; i < 4; ++i) {
      const int lanes = std::clamp(width - i * 16, 0, 16);
      m[i] = lanes == 16 ? 0xFFFF : (1u << lanes) - 1;
    }
    __m512 o0 = _mm512_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
    for (int t0 = 0; t0 < n; t0 += kKeyTile) {
      const T* v = Tile::Entries(Tile::At(values, hs, t0 / kKeyTile)) + c;
      if (c == 0) Tile::Prefetch(next_values, hs, t0 / kKeyTile);
      for (int t = t0; t < std::min(n, t0 + kKeyTile); ++t, v += hs) {
        const __m512 p = _mm512_set1_ps(scores[t]);
        o0 = _mm512_fmadd_ps(p, Load16(v, m[0]), o0);
        if (vecs > 1) o1 = _mm512_fmadd_ps(p, Load16(v + 16, m[1]), o1);
        if (vecs > 2) o2 = _mm512_fmadd_ps(p, Load16(v + 32, m[2]), o2);
        if (vecs > 3) o3 = _mm512_fmadd_ps(p, Load16(v + 48, m[3]), o3);
      }
    }
    const __m512 iv = _mm512_set1_ps(inv);
    _mm512_mask_storeu_ps(out + c, m[0], _mm512_mul_ps(o0, iv));
    _mm512_mask_storeu_ps(out + c + 16, m[1], _mm512_mul_ps(o1, iv));
    _mm512_mask_storeu_ps(out + c + 32, m[2], _mm512_mul_ps(o2, iv));
    _mm512_mask_storeu_ps(out + c + 48, m[3], _mm512_mul_ps(o3, iv));
  }
}

// Symmetric int8 of n values with one scale (QuantizeGroups' rounding).
void QuantizeRow(const float* x, int n, int8_t* q, float* scale) {
  __m512 m = _mm512_setzero_ps();
  for (int i = 0; i < n; i += 16) {
    const __mmask16 live = n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1;
    m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_maskz_loadu_ps(live, x + i)));
  }
  const float s = _mm512_reduce_max_ps(m) / 127.0f;
  const __m512 inv = _mm512_set1_ps(s == 0.0f ? 0.0f : 1.0f / s);
  for (int i = 0; i < n; i += 16) {
    const __mmask16 live = n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1;
    const __m512i v = _mm512_cvtps_epi32(
        _mm512_mul_ps(_mm512_maskz_loadu_ps(live, x + i), inv));
    _mm_mask_storeu_epi8(q + i, live, _mm512_cvtepi32_epi8(v));
  }
  *scale = s;
}

void StoreI8(const float* k, const float* v, int hs, int pos, int8_t* keys,
             int8_t* values) {
  StoreI8Position(k, v, hs, pos, keys, values, QuantizeRow);
}

void ToF16(const float* x, int n, uint16_t* out, int out_stride) {
  int i = 0;
  if (out_stride == 1) {
    for (; i + 16 <= n; i += 16) {
      _mm256_storeu_si256(
          reinterpret_cast<__m256i*>(out + i),
          _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    }
  }
  for (; i < n; ++i)
    out[int64_t{i} * out_stride] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

}  // namespace

const Kernels* Avx512VnniKernels() {
  static const Kernels k{"avx512vnni",    true,
                         kRowBlock,       kRowBlock,
                         &Quantize,       &Q8Gemm,
                         &F32Gemm,        &Dot,
                         &Attend<float>,  &Attend<uint16_t>,
                         &Attend<int8_t>, &StoreI8,
                         &ToF16,          Avx2Kernels()->swiglu};
  __builtin_cpu_init();
  const bool ok = __builtin_cpu_supports("avx512f") &&
                  __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") &&
                  __builtin_cpu_supports("avx512vnni");
  return ok ? &k : nullptr;
}

}  // namespace joule::cpu
