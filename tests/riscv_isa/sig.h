// The ISA test programs' signature: every result goes into one buffer,
// written to stdout at the end, so the ISS and qemu-riscv32 can be
// compared byte for byte.
#ifndef JOULE_TESTS_RISCV_ISA_SIG_H_
#define JOULE_TESTS_RISCV_ISA_SIG_H_

#include "syscall.h"

typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;

#define SIG_WORDS (1 << 19)
static u32 sig[SIG_WORDS];
static u32 nsig;

static inline void put(u32 v) {
  if (nsig < SIG_WORDS) sig[nsig++] = v;
}
static inline void put64(u64 v) {
  put((u32)v);
  put((u32)(v >> 32));
}

// Writes the signature (and its length first); returns main's status.
static int flush(void) {
  u32 n = nsig;
  joule_write(&n, 4);
  joule_write(sig, nsig * 4);
  return nsig < SIG_WORDS ? 0 : 3;
}

// Reads and clears the accrued FP exception flags.
static inline u32 take_flags(void) {
  u32 f;
  asm volatile("csrrw %0, fflags, zero" : "=r"(f));
  return f;
}

#endif  // JOULE_TESTS_RISCV_ISA_SIG_H_
