// Branches (taken and not, forward and backward), jal and jalr (with the
// low bit cleared), and a loop of computed jumps.
#include "sig.h"

static const u32 kVals[] = {0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff,
                            0xfffffffe, 100};
#define N (sizeof(kVals) / sizeof(kVals[0]))

#define BR(op)                                                  \
  for (u32 i = 0; i < N; ++i)                                   \
    for (u32 j = 0; j < N; ++j) {                               \
      u32 t;                                                    \
      asm volatile("li %0, 1\n " op " %1, %2, 1f\n li %0, 0\n1:" \
                   : "=&r"(t)                                   \
                   : "r"(kVals[i]), "r"(kVals[j]));             \
      put(t);                                                   \
    }

static u32 __attribute__((noinline)) twice(u32 x) { return 2 * x + 1; }
static u32 __attribute__((noinline)) thrice(u32 x) { return 3 * x; }

int main(void) {
  BR("beq") BR("bne") BR("blt") BR("bge") BR("bltu") BR("bgeu")
  // Backward branch: a counted loop.
  u32 n = 0, k = 37;
  asm volatile("1: addi %0, %0, 3\n addi %1, %1, -1\n bnez %1, 1b"
               : "+r"(n), "+r"(k));
  put(n);
  // jal's link, and jalr to an odd address (bit 0 is cleared).
  u32 link, target, back;
  asm volatile(
      "jal %0, 1f\n"
      "1: auipc %1, 0\n"
      "addi %1, %1, 13\n"  // 1f below is 12 bytes after the auipc; +1 odd
      "jalr %2, 0(%1)\n"
      "1: nop\n"
      : "=&r"(link), "=&r"(target), "=&r"(back));
  put(back - link);
  u32 (*fns[2])(u32) = {twice, thrice};
  u32 acc = 1;
  for (u32 i = 0; i < 20; ++i) acc = fns[(acc >> 3) & 1](acc) & 0xffff;
  put(acc);
  return flush();
}
