/* What the host asks the kernel image to run, shared by the kernels (C,
 * cross-compiled) and the host (C++): the host writes one JouleLaunch at
 * the image's `joule_launch` symbol before the cluster starts, and every
 * core reads it. Buffer arguments are DRAM addresses. */
#ifndef JOULE_DEVICE_RISCV_SIM_KERNELS_LAUNCH_H_
#define JOULE_DEVICE_RISCV_SIM_KERNELS_LAUNCH_H_

#include <stdint.h>

enum JouleKernel {
  /* C[M x N] = A[M x K] B[K x N], doubles, row-major. args: M, N, K, A, B,
   * C. "opt": rows in tiles of 8 (one per compute core) double-buffered by
   * the DMA, SSR streams and FREP over 8 accumulators; "base": plain loads
   * and loops after one copy of everything into the TCDM. */
  JOULE_GEMM_FP64_OPT = 1,
  JOULE_GEMM_FP64_BASE = 2,
  /* The same in singles, with B given transposed (N x K) so that pairs
   * along K are adjacent for the packed-single vfmac.s. */
  JOULE_GEMM_FP32_OPT = 3,
  JOULE_GEMM_FP32_BASE = 4,
  /* y[t][rows] (+)= W[rows x cols] x[t][cols] for each of `tokens` (1-64)
   * tokens, singles, W row-major (a weight matrix). args: rows, cols
   * (even), W, x, y, tokens, accumulate (y + W x, added after the dot
   * product as the reference does). tokens x (rows + cols) floats must
   * fit 32 KiB. W streams through the TCDM in tiles of rows, each used
   * for every token; "opt": the next tile's DMA overlaps this tile's
   * compute, SSR streams, FREP over packed pairs with four accumulators;
   * "base": copy, then plain loops, then the next copy. */
  JOULE_GEMV_FP32_OPT = 5,
  JOULE_GEMV_FP32_BASE = 6,
  /* out[r][i] = w[i] * x[r][i] / sqrt(mean(x[r]^2) + eps), the reference
   * engine's order. args: rows, dim, x, w, out, eps (float bits). */
  JOULE_RMSNORM = 7,
  /* h[i] = h[i] * sigmoid(h[i]) * g[i] in place. args: n, h, g. */
  JOULE_SWIGLU = 8,
  /* Rotates pairs (x0, x1) of each of `vectors` head vectors by its own
   * cos/sin row. args: vectors, head_size, data, cos, sin (vectors x
   * head_size / 2 each). */
  JOULE_ROPE = 9,
  /* FlashAttention-2's online softmax over key blocks of 16 for each
   * (query, head): query i sees positions 0..first_pos + i. args: queries,
   * heads, kv_heads, head_size (<= 256), q [queries][heads][hs], k and v
   * [positions][kv_heads][hs], out like q, scale (float bits), first_pos. */
  JOULE_ATTENTION = 10,
  /* The data mover copies `count` (src, dst, bytes) triples of u32 at
   * `list`, one after the other. args: count, list. */
  JOULE_DMA_COPY = 11,
};

struct JouleLaunch {
  uint32_t kernel;
  uint32_t args[15];
};

/* A core's exit status: 0, or why the launch was refused. */
enum JouleKernelStatus {
  JOULE_OK = 0,
  JOULE_UNKNOWN_KERNEL = 1,
  JOULE_BAD_SHAPE = 2,
};

#endif  /* JOULE_DEVICE_RISCV_SIM_KERNELS_LAUNCH_H_ */
