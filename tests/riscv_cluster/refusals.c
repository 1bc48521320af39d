// What the cluster refuses (each stops the run with a message naming the
// core), FREP's 16-bit iteration counter, and how long Snitch's custom
// instructions wait for a loaded operand: one scenario per run, chosen by
// the test through `scenario` and `arg` (refusals.h). The cores a
// scenario does not name exit at once.
#include "refusals.h"

#include "snitch.h"

volatile u32 scenario;
volatile u32 arg;

#define DRAM 0x80000000u
#define IN ((double*)(TCDM + 0))
#define OUT ((double*)(TCDM + 1024))

// dmsrc and dmdst with a high address word, which snitch.h's macros keep
// at zero.
#define DMSRC64(lo, hi) \
  asm volatile(".insn r 0x2b, 0, 0, x0, %0, %1" ::"r"(lo), "r"(hi))
#define DMDST64(lo, hi) \
  asm volatile(".insn r 0x2b, 0, 1, x0, %0, %1" ::"r"(lo), "r"(hi))

static void emit_u32(u32 v) { emit(&v, 4); }

// frep.o repeating `fadd.d acc, acc, 1.0`: the sum counts the body's runs.
static u32 frep_count(u32 reps) {
  const double one = 1.0;
  double acc;
  asm volatile(
      "fcvt.d.w %[acc], zero\n"
      ".insn i 0x0b, 0, x1, %[n], 0\n"  // frep.o, 1 instruction
      "fadd.d %[acc], %[acc], %[one]\n"
      : [acc] "=&f"(acc)
      : [n] "r"(reps), [one] "f"(one));
  return (u32)acc;
}

// Reads a 4-element stream `reps` + 1 times.
static u32 ssr_sum(u32 reps) {
  for (int i = 0; i < 4; ++i) IN[i] = i + 1;
  SSR_BOUND(0, 0, 4);
  SSR_STRIDE(0, 0, 8);
  SSR_READ(0, 1, IN);
  double sum;
  ssr_enable();
  asm volatile(
      "fcvt.d.w fa0, zero\n"
      ".insn i 0x0b, 0, x1, %[n], 0\n"
      "fadd.d fa0, ft0, fa0\n"
      "fsd fa0, 0(%[out])\n"
      :
      : [n] "r"(reps), [out] "r"(&sum)
      : "fa0", "ft0", "memory");
  ssr_disable();
  return (u32)sum;
}

// Writes 1, 2, ... to ft2, a 4-element write stream, `reps` + 1 times;
// returns the sum of what reached memory.
static u32 ssr_write_sum(u32 reps) {
  for (int i = 0; i < 4; ++i) OUT[i] = 0;
  SSR_BOUND(2, 0, 4);
  SSR_STRIDE(2, 0, 8);
  SSR_WRITE(2, 1, OUT);
  ssr_enable();
  asm volatile(
      "fcvt.d.w fa0, zero\n"
      "fcvt.d.w fa1, %[one]\n"
      ".insn i 0x0b, 0, x1, %[n], 1\n"  // frep.o, 2 instructions
      "fadd.d fa0, fa0, fa1\n"
      "fmv.d ft2, fa0\n"
      :
      : [n] "r"(reps), [one] "r"(1)
      : "fa0", "fa1", "ft2", "memory");
  ssr_disable();
  double sum = 0;
  for (int i = 0; i < 4; ++i) sum += OUT[i];
  return (u32)sum;
}

// A word in DRAM, where the program is linked: DRAM has no banks, so
// nothing but the load's own latency delays the loads LOAD_USE times.
static volatile u32 operand;

// The cycles from an `lw` of `value` (from `operand`) to just after
// `insn`, which reads it as %[v]; `fill` is put between the two. %[r] is
// for an `insn` that writes a result.
#define LOAD_USE(value, fill, insn)                                  \
  ({                                                                 \
    u32 t0, t1, v, r;                                                \
    operand = (value);                                               \
    asm volatile(                                                    \
        "csrr %[t0], mcycle\n"                                       \
        "lw %[v], 0(%[p])\n" fill insn "csrr %[t1], mcycle\n"        \
        : [t0] "=&r"(t0), [t1] "=&r"(t1), [v] "=&r"(v), [r] "=&r"(r) \
        : [p] "r"(&operand)                                          \
        : "ft3", "memory");                                          \
    (void)r;                                                         \
    t1 - t0;                                                         \
  })
// Each instruction timed twice: right after the load, and with an
// independent instruction in the load's shadow.
#define EMIT_LOAD_USE(value, insn)            \
  do {                                        \
    emit_u32(LOAD_USE(value, "", insn));      \
    emit_u32(LOAD_USE(value, "nop\n", insn)); \
  } while (0)

static void compute_core(u32 id) {
  const u32 a = arg;
  if (id == 3 && scenario == kDmaOnComputeCore) DMSRC(DRAM);
  if (id != 0) return;
  switch (scenario) {
    case kFrepCount:
      emit_u32(frep_count(a));
      break;
    case kFrepInner:
      asm volatile(
          ".insn i 0x0b, 0, x0, %0, 0\n"  // frep.i (is_outer clear)
          "fadd.d ft3, ft3, ft3\n" ::"r"(a)
          : "ft3");
      break;
    case kFrepNested:
      asm volatile(
          ".insn i 0x0b, 0, x1, %0, 1\n"  // A 2-instruction body
          "fadd.d ft3, ft3, ft3\n"
          ".insn i 0x0b, 0, x1, %0, 0\n"
          "fadd.d ft4, ft4, ft4\n" ::"r"(a)
          : "ft3", "ft4");
      break;
    case kFrepStreamControl:
      asm volatile(
          ".insn i 0x0b, 0, x1, %0, -2048\n"  // Immediate bit 11
          "fadd.d ft3, ft3, ft3\n" ::"r"(a)
          : "ft3");
      break;
    case kFrepBodyTooLong:
      asm volatile(
          ".insn i 0x0b, 0, x1, %0, 32\n"
          ".rept 33\n fadd.d ft3, ft3, ft3\n .endr\n" ::"r"(a)
          : "ft3");
      break;
    case kSsrPastTheEnd:
      emit_u32(ssr_sum(a));
      break;
    case kSsrReadOfWriteStream:
      SSR_BOUND(2, 0, 4);
      SSR_STRIDE(2, 0, 8);
      SSR_WRITE(2, 1, OUT);
      ssr_enable();
      asm volatile("fadd.d ft3, ft2, ft2" ::: "ft3");
      ssr_disable();
      break;
    case kSsrWritePastTheEnd:
      emit_u32(ssr_write_sum(a));
      break;
    case kSsrWriteOfReadStream:
      SSR_BOUND(0, 0, 4);
      SSR_STRIDE(0, 0, 8);
      SSR_READ(0, 1, IN);
      ssr_enable();
      asm volatile("fcvt.d.w ft0, zero" ::: "ft0");
      ssr_disable();
      break;
    case kSsrWriteWithoutJob:
      ssr_enable();
      asm volatile("fcvt.d.w ft1, zero" ::: "ft1");
      ssr_disable();
      break;
    case kLoadUseXfrepXssr:
      // frep.o over one instruction, run once (the loaded count is 0).
      EMIT_LOAD_USE(0, ".insn i 0x0b, 0, x1, %[v], 0\nfadd.d ft3, ft3, ft3\n");
      // scfgwi into data mover 0's repeat word (1), SSRs off.
      EMIT_LOAD_USE(0, ".insn i 0x2b, 2, x0, %[v], 32\n");
      break;
  }
}

static void data_mover(void) {
  const u32 a = arg;
  switch (scenario) {
    case kSsrConfigOnDataMover:
      SSR_BOUND(0, 0, 4);
      break;
    case kSsrEnableOnDataMover:
      ssr_enable();
      break;
    case kFrepOnDataMover:
      asm volatile(
          ".insn i 0x0b, 0, x1, %0, 0\n"
          "fadd.d ft3, ft3, ft3\n" ::"r"(a)
          : "ft3");
      break;
    case kDmaBytes:
      // DRAM onto itself: 64 MiB is all of it.
      DMSRC(DRAM);
      DMDST(DRAM);
      dmcpy_1d(a);
      break;
    case kDmaRows:
      DMSRC(DRAM);
      DMDST(DRAM);
      DMSTR(0, 0);
      DMREP(a);
      dmcpy_2d(1u << 20);
      break;
    case kDmaSourceHigh:
      DMSRC64(DRAM, a);
      DMDST(TCDM);
      dmcpy_1d(8);
      break;
    case kDmaDestinationHigh:
      DMSRC(DRAM);
      DMDST64((u32)TCDM, a);
      dmcpy_1d(8);
      break;
    case kLoadUseXdma:
      EMIT_LOAD_USE((u32)IN, ".insn r 0x2b, 0, 0, x0, %[v], x0\n");  // dmsrc
      DMDST(OUT);
      EMIT_LOAD_USE(8, ".insn r 0x2b, 0, 2, %[r], %[v], x0\n");  // dmcpyi
      break;
  }
}

int main(u32 id) {
  if (id == 8) {
    data_mover();
  } else {
    compute_core(id);
  }
  return 0;
}
