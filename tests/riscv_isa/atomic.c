// The A extension: every AMO on a word, and lr/sc pairs that succeed and
// that fail (no reservation, or one broken by a store).
#include "sig.h"

static volatile u32 word __attribute__((aligned(4)));

static const u32 kVals[] = {0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 1234};
#define N (sizeof(kVals) / sizeof(kVals[0]))

#define AMO(op)                                                       \
  for (u32 i = 0; i < N; ++i)                                         \
    for (u32 j = 0; j < N; ++j) {                                     \
      word = kVals[i];                                                \
      u32 old;                                                        \
      asm volatile(op " %0, %2, (%1)"                                 \
                   : "=r"(old)                                        \
                   : "r"(&word), "r"(kVals[j])                        \
                   : "memory");                                       \
      put(old);                                                       \
      put(word);                                                      \
    }

int main(void) {
  AMO("amoswap.w") AMO("amoadd.w") AMO("amoxor.w") AMO("amoand.w")
  AMO("amoor.w") AMO("amomin.w") AMO("amomax.w") AMO("amominu.w")
  AMO("amomaxu.w")
  u32 v, fail;
  word = 5;
  asm volatile("lr.w %0, (%2)\n addi %0, %0, 1\n sc.w %1, %0, (%2)"
               : "=&r"(v), "=&r"(fail) : "r"(&word) : "memory");
  put(fail);
  put(word);
  // A store to the reserved word between lr and sc breaks the reservation.
  asm volatile("lr.w %0, (%2)\n sw zero, 0(%2)\n sc.w %1, %0, (%2)"
               : "=&r"(v), "=&r"(fail) : "r"(&word) : "memory");
  put(fail);
  put(word);
  return flush();
}
