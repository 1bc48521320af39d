/* Matrix-vector products on one Snitch cluster (launch.h). A decode step's
 * weights are read once, so W streams from DRAM through the TCDM in tiles
 * of rows; cores 0-7 take every eighth row of a tile, core 8 moves data. */
#include "gemv.h"

#define W_BYTES (32u * 1024u) /* Per W buffer in the TCDM (two of them). */
/* Every token's x and y, above the W buffers and below the attention
 * scratch and the stacks (launch.h). */
#define XY_BYTES (32u * 1024u)

/* Rows per tile: as many whole groups of 8 as fit in a buffer. */
static u32 tile_rows(u32 cols) {
  const u32 r = W_BYTES / (cols * 4) / 8 * 8;
  return r;
}

/* One core's rows of a tile: SSR 0 walks them (pairs of singles), SSR 1
 * walks x again for each; FREP runs vfmac.s over the pairs into four
 * staggered accumulators, and vfsum.s folds their lanes into y. */
static void rows_opt(const float* w, const float* x, float* y, u32 my_rows,
                     u32 cols, u32 acc) {
  const u32 pairs = cols / 2;
  SSR_REPEAT(0, 1);
  SSR_BOUND(0, 0, pairs);
  SSR_BOUND(0, 1, my_rows);
  SSR_STRIDE(0, 0, 8);
  SSR_STRIDE(0, 1, 8 * cols * 4 - 8 * (pairs - 1)); /* Every 8th row. */
  SSR_READ(0, 2, w);
  SSR_REPEAT(1, 1);
  SSR_BOUND(1, 0, pairs);
  SSR_BOUND(1, 1, my_rows);
  SSR_STRIDE(1, 0, 8);
  SSR_STRIDE(1, 1, -(int)(8 * (pairs - 1)));
  SSR_READ(1, 2, x);
  ssr_enable();
  for (u32 r = 0; r < my_rows; ++r) {
    asm volatile(
        "fcvt.d.w f3, zero\n fcvt.d.w f4, zero\n"
        "fcvt.d.w f5, zero\n fcvt.d.w f6, zero\n fcvt.d.w f11, zero\n"
        ".insn i 0x0b, 3, x3, %[it], 0\n" /* frep.o 1 insn, stagger 3, rd */
        ".insn r 0x33, 0, 0x48, f3, ft0, ft1\n"
        ".insn r 0x33, 0, 0x47, f11, f3, f28\n"
        ".insn r 0x33, 0, 0x47, f11, f4, f28\n"
        ".insn r 0x33, 0, 0x47, f11, f5, f28\n"
        ".insn r 0x33, 0, 0x47, f11, f6, f28\n"
        /* Accumulating: y + dot, the reference's order. */
        "beqz %[acc], 1f\n flw f12, 0(%[y])\n fadd.s f11, f12, f11\n"
        "1: fsw f11, 0(%[y])\n" ::[it] "r"(pairs - 1),
        [y] "r"(y + 8 * r), [acc] "r"(acc)
        : "f3", "f4", "f5", "f6", "f11", "f12", "ft0", "ft1", "memory");
  }
  ssr_disable();
}

static void rows_base(const float* w, const float* x, float* y, u32 my_rows,
                      u32 cols, u32 acc) {
  for (u32 r = 0; r < my_rows; ++r) {
    const float* row = w + 8 * r * cols;
    float s = 0;
    for (u32 c = 0; c < cols; ++c) s += row[c] * x[c];
    y[8 * r] = acc ? y[8 * r] + s : s;
  }
}

/* One core's rows of a tile, for every token in turn: the tile is read
 * from the TCDM once per token but from DRAM once for all of them. */
static void tile_rows_all(const float* wt, const float* tx, float* ty, u32 mine,
                          u32 rows, u32 cols, u32 tokens, u32 acc, int opt) {
  for (u32 t = 0; t < tokens; ++t) {
    if (opt) {
      rows_opt(wt, tx + t * cols, ty + t * rows, mine, cols, acc);
    } else {
      rows_base(wt, tx + t * cols, ty + t * rows, mine, cols, acc);
    }
  }
}

int gemv(u32 id, const struct JouleLaunch* l) {
  const u32 rows = l->args[0], cols = l->args[1];
  const char* w = (const char*)l->args[2];
  const float* x = (const float*)l->args[3];
  float* y = (float*)l->args[4];
  const u32 tokens = l->args[5], acc = l->args[6];
  const int opt = l->kernel == JOULE_GEMV_FP32_OPT;
  /* x and y of every token share the TCDM above the two W buffers. */
  if (rows == 0 || cols < 2 || cols % 2 || cols > 2048 || rows > 65536 ||
      tokens == 0 || tokens > 64 || tile_rows(cols) == 0 ||
      tokens * (rows + cols) * 4 > XY_BYTES) {
    return JOULE_BAD_SHAPE;
  }
  const u32 tr = tile_rows(cols), tiles = (rows + tr - 1) / tr;
  char* tw[2] = {(char*)TCDM, (char*)TCDM + W_BYTES};
  float* tx = (float*)(TCDM + 2 * W_BYTES);
  float* ty = tx + tokens * cols;
  if (id == 8) {
    dma_1d(tx, x, tokens * cols * 4);
    if (acc) dma_1d(ty, y, tokens * rows * 4);
    dma_wait(dma_1d(tw[0], w, (rows < tr ? rows : tr) * cols * 4));
  }
  barrier();
  for (u32 t = 0; t < tiles; ++t) {
    const u32 first = t * tr, n = rows - first < tr ? rows - first : tr;
    const u32 rest = rows - first - n, next = rest < tr ? rest : tr;
    /* The optimized kernel alternates buffers and fetches the next tile
     * while this one is computed; the baseline fetches it after. */
    const u32 buf = opt ? t & 1 : 0;
    if (id < 8 && id < n) {
      const float* wt = (const float*)(tw[buf] + id * cols * 4);
      tile_rows_all(wt, tx, ty + first + id, (n - id + 7) / 8, rows, cols,
                    tokens, acc, opt);
    }
    if (id == 8 && opt && next > 0) {
      dma_wait(
          dma_1d(tw[buf ^ 1], w + (first + n) * cols * 4, next * cols * 4));
    }
    barrier();
    if (!opt && next > 0) {
      if (id == 8)
        dma_wait(dma_1d(tw[0], w + (first + n) * cols * 4, next * cols * 4));
      barrier();
    }
  }
  if (id == 8) dma_wait(dma_1d(y, ty, tokens * rows * 4));
  return JOULE_OK;
}
