// SSR streams and FREP on core 0 (the other cores exit at once): a dot
// product over two streams with one accumulator and with four (FREP's
// stagger), the same with both streams in one TCDM bank, a 2-D block copy
// through a write stream, repetition, and a 4-D walk. Core 0 emits each
// result and the cycles each kernel took (rdcycle, after reading back its
// FP results so the FP pipeline has drained).
#include "snitch.h"

#define N 64
#define A ((double*)(TCDM + 0))
#define B ((double*)(TCDM + 520))  // 65 words on: the next bank.
#define B_SAME ((double*)(TCDM + 1536))  // 192 words on: A's bank.
#define M ((double*)(TCDM + 2048))  // 8 x 8
#define OUT ((double*)(TCDM + 4096))
#define V ((double*)(TCDM + 6144))

static u32 sig[256];
static u32 nsig;
static void put(u32 v) { sig[nsig++] = v; }
static void putd(double d) {
  u64 b;
  __builtin_memcpy(&b, &d, 8);
  put((u32)b);
  put((u32)(b >> 32));
}

// Dot product of A and b over N elements by FREP on SSRs 0 and 1;
// `four`: four accumulators by staggering fmadd's rd and rs3.
static double dot(const double* b, int four, u32* cycles) {
  SSR_BOUND(0, 0, N);
  SSR_STRIDE(0, 0, 8);
  SSR_BOUND(1, 0, N);
  SSR_STRIDE(1, 0, 8);
  SSR_READ(0, 1, A);
  SSR_READ(1, 1, b);
  double out;
  u32 t0, t1, sync;
  ssr_enable();
  if (four) {
    asm volatile(
        "fcvt.d.w fa0, zero\n fcvt.d.w fa1, zero\n"
        "fcvt.d.w fa2, zero\n fcvt.d.w fa3, zero\n"
        "csrr %[t0], mcycle\n"
        ".insn i 0x0b, 3, x19, %[it], 0\n"  // frep.o, 1 insn, stagger 3, rd|rs3
        "fmadd.d fa0, ft0, ft1, fa0\n"
        "fmv.x.w %[s], fa0\n fmv.x.w %[s], fa1\n"
        "fmv.x.w %[s], fa2\n fmv.x.w %[s], fa3\n"
        "mv %[s], %[s]\n"  // Waits for the FP pipeline (snrt_fpu_fence).
        "csrr %[t1], mcycle\n"
        "fadd.d fa0, fa0, fa1\n fadd.d fa0, fa0, fa2\n fadd.d fa0, fa0, fa3\n"
        "fsd fa0, 0(%[out])\n"
        : [t0] "=&r"(t0), [t1] "=&r"(t1), [s] "=&r"(sync)
        : [it] "r"(N - 1), [out] "r"(&out)
        : "fa0", "fa1", "fa2", "fa3", "ft0", "ft1", "memory");
  } else {
    asm volatile(
        "fcvt.d.w fa0, zero\n"
        "csrr %[t0], mcycle\n"
        ".insn i 0x0b, 0, x1, %[it], 0\n"  // frep.o, 1 insn
        "fmadd.d fa0, ft0, ft1, fa0\n"
        "fmv.x.w %[s], fa0\n"
        "mv %[s], %[s]\n"
        "csrr %[t1], mcycle\n"
        "fsd fa0, 0(%[out])\n"
        : [t0] "=&r"(t0), [t1] "=&r"(t1), [s] "=&r"(sync)
        : [it] "r"(N - 1), [out] "r"(&out)
        : "fa0", "ft0", "ft1", "memory");
  }
  ssr_disable();
  *cycles = t1 - t0;
  return out;
}

// `n` elements from SSR 0 through `op` into SSR 2's write stream.
#define STREAM_COPY(n, op)                                         \
  do {                                                             \
    ssr_enable();                                                  \
    asm volatile(".insn i 0x0b, 0, x1, %0, 0\n" op "\n"            \
                 "fmv.x.w t0, fa0\n" ::"r"((n) - 1)                \
                 : "ft0", "ft1", "ft2", "t0", "memory");           \
    ssr_disable();                                                 \
  } while (0)

int main(u32 id) {
  if (id != 0) return 0;
  for (int i = 0; i < N; ++i) {
    A[i] = 1.0 + i * 0.25;
    B[i] = B_SAME[i] = 2.0 - i * 0.125;
  }
  u32 cycles;
  putd(dot(B, 0, &cycles));
  put(cycles);
  putd(dot(B, 1, &cycles));
  put(cycles);
  putd(dot(B_SAME, 1, &cycles));
  put(cycles);
  // Reference sums in the kernels' orders.
  double one = 0, acc[4] = {0, 0, 0, 0};
  for (int i = 0; i < N; ++i) {
    one = __builtin_fma(A[i], B[i], one);
    acc[i % 4] = __builtin_fma(A[i], B[i], acc[i % 4]);
  }
  putd(one);
  putd(((acc[0] + acc[1]) + acc[2]) + acc[3]);

  // 2-D: the 4 x 4 block at M[2][3] of an 8 x 8 matrix, copied densely.
  for (int i = 0; i < 64; ++i) M[i] = i;
  SSR_BOUND(0, 0, 4);
  SSR_BOUND(0, 1, 4);
  SSR_STRIDE(0, 0, 8);
  SSR_STRIDE(0, 1, 64 - 8 * 3);
  SSR_READ(0, 2, M + 2 * 8 + 3);
  SSR_BOUND(2, 0, 16);
  SSR_STRIDE(2, 0, 8);
  SSR_WRITE(2, 1, OUT);
  STREAM_COPY(16, "fsgnj.d ft2, ft0, ft0");
  for (int i = 0; i < 16; ++i) put((u32)OUT[i]);

  // Repetition: each of 8 elements delivered twice.
  SSR_REPEAT(0, 2);
  SSR_BOUND(0, 0, 8);
  SSR_STRIDE(0, 0, 8);
  SSR_READ(0, 1, M);
  SSR_BOUND(2, 0, 16);
  SSR_WRITE(2, 1, OUT);
  STREAM_COPY(16, "fadd.d ft2, ft0, ft0");
  SSR_REPEAT(0, 1);
  for (int i = 0; i < 16; ++i) put((u32)OUT[i]);

  // 4-D: 2 x 2 x 2 x 2 over V with absolute strides 64, 8, 32, 16 bytes
  // (relative: 64, 8 - 64, 32 - 72, 16 - 104).
  for (int i = 0; i < 16; ++i) V[i] = i;
  for (int d = 0; d < 4; ++d) SSR_BOUND(0, d, 2);
  SSR_STRIDE(0, 0, 64);
  SSR_STRIDE(0, 1, 8 - 64);
  SSR_STRIDE(0, 2, 32 - 72);
  SSR_STRIDE(0, 3, 16 - 104);
  SSR_READ(0, 4, V);
  SSR_BOUND(2, 0, 16);
  SSR_WRITE(2, 1, OUT);
  STREAM_COPY(16, "fsgnj.d ft2, ft0, ft0");
  for (int i = 0; i < 16; ++i) put((u32)OUT[i]);
  emit(sig, nsig * 4);
  return 0;
}
