// Packed singles (Xfvec) on core 0: a dot product of 64 floats as 32
// pairs streamed by SSRs into vfmac.s with four staggered accumulators,
// reduced by vfsum.s; and vfcpka.s.s packing two scalars.
#include "snitch.h"

#define PAIRS 32
#define A ((float*)(TCDM + 0))
#define B ((float*)(TCDM + 264))  // 33 words on: the next bank.

int main(u32 id) {
  if (id != 0) return 0;
  for (int i = 0; i < 2 * PAIRS; ++i) {
    A[i] = 0.5f + i * 0.375f;
    B[i] = 1.25f - i * 0.0625f;
  }
  SSR_BOUND(0, 0, PAIRS);
  SSR_STRIDE(0, 0, 8);
  SSR_BOUND(1, 0, PAIRS);
  SSR_STRIDE(1, 0, 8);
  SSR_READ(0, 1, A);
  SSR_READ(1, 1, B);
  u32 out[3], sync;
  ssr_enable();
  asm volatile(
      "fcvt.d.w fa0, zero\n fcvt.d.w fa1, zero\n"
      "fcvt.d.w fa2, zero\n fcvt.d.w fa3, zero\n fcvt.d.w fa4, zero\n"
      ".insn i 0x0b, 3, x3, %[it], 0\n"  // frep.o, 1 insn, stagger 3, rd
      ".insn r 0x33, 0, 0x48, fa0, ft0, ft1\n"  // vfmac.s fa0, ft0, ft1
      ".insn r 0x33, 0, 0x47, fa4, fa0, f28\n"  // vfsum.s fa4, fa0
      ".insn r 0x33, 0, 0x47, fa4, fa1, f28\n"
      ".insn r 0x33, 0, 0x47, fa4, fa2, f28\n"
      ".insn r 0x33, 0, 0x47, fa4, fa3, f28\n"
      "fmv.x.w %[s], fa4\n"
      "sw %[s], 0(%[out])\n"
      : [s] "=&r"(sync)
      : [it] "r"(PAIRS - 1), [out] "r"(out)
      : "fa0", "fa1", "fa2", "fa3", "fa4", "ft0", "ft1", "memory");
  ssr_disable();
  float x = 1.5f, y = -2.0f;
  asm volatile(
      ".insn r 0x33, 0, 0x58, ft3, %[x], %[y]\n"  // vfcpka.s.s ft3, x, y
      "fsd ft3, 0(%[out])\n" ::[x] "f"(x),
      [y] "f"(y), [out] "r"(out + 1)
      : "ft3", "memory");
  emit(out, sizeof(out));
  return 0;
}
