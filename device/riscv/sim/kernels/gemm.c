/* Matrix products on one Snitch cluster (launch.h has the contracts).
 * Cores 0-7 compute, core 8 moves data; every core passes the same
 * barriers. */
#include "gemm.h"

#include "snitch.h"

#define TCDM_BYTES (128u * 1024u)
/* Data may use the TCDM below the cores' stacks (9 KiB at the top). */
#define TCDM_DATA (TCDM_BYTES - 12u * 1024u)
#define ROWS 8 /* One tile row per compute core. */
#define UNROLL 8 /* Accumulators per core: columns computed at once. */

/* Bytes from one row of B (as the optimized kernels hold it in the TCDM)
 * to the next. The fp32 kernel walks B transposed down its columns, eight
 * rows at a time: rows a multiple of 256 bytes apart would all start in
 * one bank, so they get 8 bytes of padding. */
static u32 b_pitch(u32 n, u32 k, u32 elem) {
  return elem == 8 ? n * 8 : k * 4 + 8;
}

static int fits(u32 m, u32 n, u32 k, u32 elem, int opt) {
  if (m == 0 || n == 0 || k == 0 || m % ROWS || n % UNROLL) return 0;
  if (elem == 4 && k % 2) return 0;
  if (m > 1024 || n > 1024 || k > 1024) return 0;
  const u32 b = elem == 8 ? k * b_pitch(n, k, 8) : n * b_pitch(n, k, 4);
  const u32 need = opt ? b + 2 * ROWS * (k + n) * elem
                       : (m * k + k * n + m * n) * elem;
  return need <= TCDM_DATA;
}

/* The streams of one core's row: SSR 0 walks a's `steps` 64-bit words
 * (doubles, or pairs of singles), each repeated for the UNROLL columns,
 * once per block of UNROLL columns; SSR 1 walks b: `column` bytes from one
 * column to the next, `step` bytes from one of a's words to the next, all
 * n columns in blocks of UNROLL. Strides are relative, as the hardware
 * applies them (docs/riscv_iss_sources.md section 1). */
static void row_streams(const void* a, const void* b, u32 steps, u32 n,
                        u32 column, u32 step) {
  SSR_REPEAT(0, UNROLL);
  SSR_BOUND(0, 0, steps);
  SSR_BOUND(0, 1, n / UNROLL);
  SSR_STRIDE(0, 0, 8);
  SSR_STRIDE(0, 1, -(int)(8 * (steps - 1)));
  SSR_READ(0, 2, a);
  SSR_REPEAT(1, 1);
  SSR_BOUND(1, 0, UNROLL);
  SSR_BOUND(1, 1, steps);
  SSR_BOUND(1, 2, n / UNROLL);
  SSR_STRIDE(1, 0, column);
  SSR_STRIDE(1, 1, step - column * (UNROLL - 1));
  SSR_STRIDE(1, 2,
             column * UNROLL - (column * (UNROLL - 1) + step * (steps - 1)));
  SSR_READ(1, 3, b);
}

/* One core's row of a tile: c[0..n) = a[0..k) x b, by SSR and FREP over
 * UNROLL accumulators. */
static void row_fp64(const double* a, const double* b, double* c, u32 n,
                     u32 k) {
  row_streams(a, b, k, n, 8, 8 * n);
  ssr_enable();
  for (u32 j = 0; j < n; j += UNROLL) {
    asm volatile(
        "fcvt.d.w f3, zero\n fcvt.d.w f4, zero\n fcvt.d.w f5, zero\n"
        "fcvt.d.w f6, zero\n fcvt.d.w f7, zero\n fcvt.d.w f8, zero\n"
        "fcvt.d.w f9, zero\n fcvt.d.w f10, zero\n"
        ".insn i 0x0b, 0, x1, %[it], 7\n" /* frep.o: 8 insns, k times */
        "fmadd.d f3, ft0, ft1, f3\n fmadd.d f4, ft0, ft1, f4\n"
        "fmadd.d f5, ft0, ft1, f5\n fmadd.d f6, ft0, ft1, f6\n"
        "fmadd.d f7, ft0, ft1, f7\n fmadd.d f8, ft0, ft1, f8\n"
        "fmadd.d f9, ft0, ft1, f9\n fmadd.d f10, ft0, ft1, f10\n"
        "fsd f3, 0(%[c])\n fsd f4, 8(%[c])\n fsd f5, 16(%[c])\n"
        "fsd f6, 24(%[c])\n fsd f7, 32(%[c])\n fsd f8, 40(%[c])\n"
        "fsd f9, 48(%[c])\n fsd f10, 56(%[c])\n" ::[it] "r"(k - 1),
        [c] "r"(c + j)
        : "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "ft0", "ft1",
          "memory");
  }
  ssr_disable();
}

/* The same in singles: b is transposed (n x k, rows at b_pitch), pairs
 * along k packed in one register; vfmac.s accumulates both lanes, vfsum.s
 * adds them. */
static void row_fp32(const float* a, const float* bt, float* c, u32 n,
                     u32 k) {
  const u32 pairs = k / 2;
  row_streams(a, bt, pairs, n, b_pitch(n, k, 4), 8);
  ssr_enable();
  for (u32 j = 0; j < n; j += UNROLL) {
    asm volatile(
        "fcvt.d.w f3, zero\n fcvt.d.w f4, zero\n fcvt.d.w f5, zero\n"
        "fcvt.d.w f6, zero\n fcvt.d.w f7, zero\n fcvt.d.w f8, zero\n"
        "fcvt.d.w f9, zero\n fcvt.d.w f10, zero\n"
        ".insn i 0x0b, 0, x1, %[it], 7\n"
        ".insn r 0x33, 0, 0x48, f3, ft0, ft1\n"
        ".insn r 0x33, 0, 0x48, f4, ft0, ft1\n"
        ".insn r 0x33, 0, 0x48, f5, ft0, ft1\n"
        ".insn r 0x33, 0, 0x48, f6, ft0, ft1\n"
        ".insn r 0x33, 0, 0x48, f7, ft0, ft1\n"
        ".insn r 0x33, 0, 0x48, f8, ft0, ft1\n"
        ".insn r 0x33, 0, 0x48, f9, ft0, ft1\n"
        ".insn r 0x33, 0, 0x48, f10, ft0, ft1\n"
#define SUM(r, off)                                  \
  "fcvt.d.w f11, zero\n"                             \
  ".insn r 0x33, 0, 0x47, f11, " r ", f28\n"         \
  "fsw f11, " off "(%[c])\n"
        SUM("f3", "0") SUM("f4", "4") SUM("f5", "8") SUM("f6", "12")
        SUM("f7", "16") SUM("f8", "20") SUM("f9", "24") SUM("f10", "28")
#undef SUM
        ::[it] "r"(pairs - 1),
        [c] "r"(c + j)
        : "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "f11", "ft0",
          "ft1", "memory");
  }
  ssr_disable();
}

/* Tiles of ROWS rows: the DMA brings tile t + 1's rows of A while the
 * compute cores work on tile t, and takes tile t's C out after. B stays in
 * the TCDM throughout. */
static int gemm_opt(u32 id, const uint32_t* arg, u32 elem) {
  const u32 m = arg[0], n = arg[1], k = arg[2];
  if (!fits(m, n, k, elem, 1)) return JOULE_BAD_SHAPE;
  char* tb = (char*)TCDM;
  const u32 pitch = b_pitch(n, k, elem), rows_b = elem == 8 ? k : n;
  const u32 b_bytes = rows_b * pitch;
  char* ta[2] = {tb + b_bytes, tb + b_bytes + ROWS * k * elem};
  char* tc[2] = {ta[1] + ROWS * k * elem, ta[1] + ROWS * (k + n) * elem};
  const char* a = (const char*)arg[3];
  const char* b = (const char*)arg[4];
  char* c = (char*)arg[5];
  const u32 tiles = m / ROWS, a_tile = ROWS * k * elem,
            c_tile = ROWS * n * elem;
  u32 last = 0;
  if (id == 8) {
    /* B's rows at their TCDM pitch: one 2-D transfer. */
    const u32 row = elem == 8 ? n * 8 : k * 4;
    DMSRC((u32)b);
    DMDST((u32)tb);
    DMSTR(row, pitch);
    DMREP(rows_b);
    dmcpy_2d(row);
    dma_wait(dma_1d(ta[0], a, a_tile));
  }
  barrier();
  for (u32 t = 0; t < tiles; ++t) {
    const u32 buf = t & 1;
    if (id == 8) {
      if (t + 1 < tiles) dma_wait(dma_1d(ta[buf ^ 1], a + (t + 1) * a_tile, a_tile));
    } else if (elem == 8) {
      row_fp64((const double*)(ta[buf] + id * k * 8), (const double*)tb,
               (double*)(tc[buf] + id * n * 8), n, k);
    } else {
      row_fp32((const float*)(ta[buf] + id * k * 4), (const float*)tb,
               (float*)(tc[buf] + id * n * 4), n, k);
    }
    barrier();
    /* In order: this copy ends before the next tile's A arrives, so
     * before tc[buf] is written again two tiles on. */
    if (id == 8) last = dma_1d(c + t * c_tile, tc[buf], c_tile);
  }
  if (id == 8) dma_wait(last);
  return JOULE_OK;
}

/* Everything into the TCDM at once, plain loops over it, everything out:
 * rows dealt round-robin to the compute cores. */
static int gemm_base(u32 id, const uint32_t* arg, u32 elem) {
  const u32 m = arg[0], n = arg[1], k = arg[2];
  if (!fits(m, n, k, elem, 0)) return JOULE_BAD_SHAPE;
  char* ta = (char*)TCDM;
  char* tb = ta + m * k * elem;
  char* tc = tb + k * n * elem;
  if (id == 8) {
    dma_1d(ta, (const void*)arg[3], m * k * elem);
    dma_wait(dma_1d(tb, (const void*)arg[4], k * n * elem));
  }
  barrier();
  for (u32 i = id; id < 8 && i < m; i += 8) {
    for (u32 j = 0; j < n; ++j) {
      if (elem == 8) {
        const double* a = (const double*)ta + i * k;
        const double* b = (const double*)tb + j;
        double s = 0;
        for (u32 q = 0; q < k; ++q) s += a[q] * b[q * n];
        ((double*)tc)[i * n + j] = s;
      } else {
        const float* a = (const float*)ta + i * k;
        const float* bt = (const float*)tb + j * k;
        float s = 0;
        for (u32 q = 0; q < k; ++q) s += a[q] * bt[q];
        ((float*)tc)[i * n + j] = s;
      }
    }
  }
  barrier();
  if (id == 8) dma_wait(dma_1d((void*)arg[5], tc, m * n * elem));
  return JOULE_OK;
}

int gemm(u32 id, const struct JouleLaunch* l) {
  switch (l->kernel) {
    case JOULE_GEMM_FP64_OPT: return gemm_opt(id, l->args, 8);
    case JOULE_GEMM_FP64_BASE: return gemm_base(id, l->args, 8);
    case JOULE_GEMM_FP32_OPT: return gemm_opt(id, l->args, 4);
    default: return gemm_base(id, l->args, 4);
  }
}
