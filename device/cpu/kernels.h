#ifndef JOULE_DEVICE_CPU_KERNELS_H_
#define JOULE_DEVICE_CPU_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace joule::cpu {

// Positions per key-cache tile (see Kernels::attend).
constexpr int kKeyTile = 16;
// The widest head Kernels::store_i8 takes.
constexpr int kMaxI8HeadSize = 256;

// Q8_0 weights in the layout one kernel reads (packed_weights.h makes
// it): rows in blocks of `row_block`; inside a block, group by group and 4
// columns at a time, the block's rows side by side
// ([block][group][gs / 4][row_block][4] bytes). One vector load then holds
// 4 columns of row_block rows, one broadcast of 4 activation bytes meets
// them all, and vpdpbusd adds 4 exact products into each row's lane: no
// horizontal sums, and the per-group int32 -> fp32 step is paid once per
// row_block rows instead of once per row. row_block 1 is row-major, the
// checkpoint's own layout.
struct Q8Weights {
  const int8_t* q = nullptr;
  const float* scale = nullptr;  // [block][group][row_block]; padding 0.
  // [block][group][row_block]: -128 x the group's weight sum, which cancels
  // the +128 of unsigned activations; null for signed ones.
  const int32_t* bias = nullptr;
  int rows = 0, cols = 0, gs = 0, row_block = 1;
  // Q4_0: two weights per byte, half the bytes to stream. The layout is
  // the same with 8 columns per step ([block][group][gs / 8][row_block][4]
  // bytes): a byte's low nibble holds the weight of the step's first 4
  // columns, its high nibble the next 4's, each as w + 8 (0..15). One load
  // then feeds two broadcasts after a mask and a shift. gs % 8 == 0.
  bool nibbles = false;
  int blocks() const { return (rows + row_block - 1) / row_block; }
  size_t block_bytes() const {
    return size_t(cols) * row_block / (nibbles ? 2 : 1);
  }
};

// fp32 weights in the layout one kernel reads (packed_weights.h makes it):
// rows in blocks of `row_block`, and inside a block column by column, the
// block's rows side by side ([block][col][row_block]). One vector load then
// holds a column of row_block rows and one broadcast activation meets them
// all: no horizontal sums. row_block 1 is row-major, the checkpoint's own.
struct F32Weights {
  const float* w = nullptr;
  int rows = 0, cols = 0, row_block = 1;
  int blocks() const { return (rows + row_block - 1) / row_block; }
};

// The fast engine's hot loops, one implementation per instruction set,
// chosen at run time (the same binary runs with AVX-512 VNNI, AVX2 or
// neither).
struct Kernels {
  std::string isa;
  // Quantizes activations for q8_gemm: int8 with per-group scales, stored
  // as x + 128 (uint8) when `unsigned_activations` (VNNI's u8 x s8 dot).
  bool unsigned_activations = false;
  // The Q8Weights layout q8_gemm reads; it needs gs % 4 == 0 when > 1.
  int row_block = 1;
  // The F32Weights layout f32_gemm reads.
  int f32_row_block = 1;
  void (*quantize)(const float* x, int n, int gs, int8_t* q, float* scale);
  // out[b * out_stride + r] = sum over groups g of row r:
  //   (int32 dot of w[r, g] and x[b, g]) * w_scale[r, g] * x_scale[b, g]
  // for the rows of blocks [block0, block1), b in [0, batch); x is
  // [batch x cols] int8 with per-group scales. The int32 dots are exact.
  void (*q8_gemm)(const Q8Weights& w, const int8_t* x, const float* x_scale,
                  int batch, float* out, int out_stride, int block0,
                  int block1);
  // out[b * out_stride + r] = dot(w[r], x[b]) in fp32, for the rows of
  // blocks [block0, block1) and b in [0, batch); x is [batch x cols].
  void (*f32_gemm)(const F32Weights& w, const float* x, int batch, float* out,
                   int out_stride, int block0, int block1);
  float (*dot)(const float* a, const float* b, int n);
  // One query head over `n` cached positions: out = softmax(q . k_t *
  // scale) weighted sum of v_t, from one KV head's cache. Its keys come in
  // tiles of kKeyTile positions, dimension-major ([tile][head_size]
  // [kKeyTile]), so one vector load holds a dimension of 16 keys and the
  // scores need no horizontal sums; its values are [position][head_size].
  // Both are contiguous, so the reads are two plain streams. `scores` has
  // room for n rounded up to kKeyTile floats. `next_keys` and
  // `next_values` (or null) are the next head's cache: each tile read pulls
  // the same tile of it into cache, so memory streams while this one
  // computes (a burst of prefetches per head stalled on the core's miss
  // buffers instead).
  void (*attend)(const float* q, const float* keys, const float* values, int n,
                 int head_size, float scale, float* scores, float* out,
                 const float* next_keys, const float* next_values);
  // The same over an fp16 cache (IEEE binary16), which halves the bytes
  // attention reads.
  void (*attend_f16)(const float* q, const uint16_t* keys,
                     const uint16_t* values, int n, int head_size, float scale,
                     float* scores, float* out, const uint16_t* next_keys,
                     const uint16_t* next_values);
  // The same over an int8 cache, a quarter of fp32's bytes: each head's
  // keys and values in tiles of kKeyTile positions (CacheTile<int8_t> in
  // cache_tiles.h); a tile holds kKeyTile fp32 scales (one per position:
  // max |entry| / 127 over the head), then the int8 entries, keys
  // dimension-major ([head_size][kKeyTile]) and values position-major
  // ([kKeyTile][head_size]).
  void (*attend_i8)(const float* q, const int8_t* keys, const int8_t* values,
                    int n, int head_size, float scale, float* scores,
                    float* out, const int8_t* next_keys,
                    const int8_t* next_values);
  // Quantizes one position's key and value of one head into that cache
  // (`keys` and `values` at the head's first tile), rounding to nearest
  // even as QuantizeGroups does; head_size <= kMaxI8HeadSize.
  void (*store_i8)(const float* k, const float* v, int head_size, int pos,
                   int8_t* keys, int8_t* values);
  // out[i * out_stride] = fp16(x[i]), rounding to nearest even.
  void (*to_f16)(const float* x, int n, uint16_t* out, int out_stride);
  // h[i] = silu(h[i]) * g[i], with a polynomial exp (about 2 ulp): for the
  // int8 path, whose activations are quantized anyway.
  void (*swiglu)(float* h, const float* g, int n);
};

// The best kernels this CPU supports (or the one `isa` names: "avx512vnni",
// "avx2", "generic"; unsupported names fall back).
const Kernels& SelectKernels(const std::string& isa = "");

// Symmetric int8 quantization of `n` values in groups of `gs` (Q8_0, as
// llama2.c's runq): scale = max|x| / 127.
void QuantizeGroups(const float* x, int n, int gs, int8_t* q, float* scale);

// IEEE binary16 conversions in plain C++ (round to nearest even), for the
// generic kernels and tests.
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);

// Implementations, for tests.
const Kernels& GenericKernels();
const Kernels* Avx2Kernels();        // nullptr if this CPU lacks AVX2+FMA.
const Kernels* Avx512VnniKernels();  // nullptr if this CPU lacks it.

}  // namespace joule::cpu

#endif  // JOULE_DEVICE_CPU_KERNELS_H_
