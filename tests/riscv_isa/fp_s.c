// Single precision: every F instruction over edge values (zeros,
// subnormals, the largest finite, infinities, quiet and signaling NaNs,
// ties) in every rounding mode, each result with the flags it raised; and
// NaN-boxing of singles in the 64-bit registers.
#include "sig.h"

static const u32 kVals[] = {
    0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x3fc00000, 0x3dcccccd,
    0x40400000, 0xc0200000, 0x00000001, 0x00800000, 0x807fffff, 0x7f7fffff,
    0xff7fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fa00000, 0xffc00001,
    0x4f000000, 0xcf000001, 0x4f800000, 0x3f000000, 0x40200000, 0xbf000000,
    0xbfc00000, 0x7149f2ca, 0x33800000, 0x4b7fffff};
#define N (sizeof(kVals) / sizeof(kVals[0]))

static inline float F(u32 b) {
  float f;
  asm volatile("fmv.w.x %0, %1" : "=f"(f) : "r"(b));
  return f;
}
static inline u32 B(float f) {
  u32 b;
  asm volatile("fmv.x.w %0, %1" : "=r"(b) : "f"(f));
  return b;
}

#define OP2(op, rm)                                                       \
  for (u32 i = 0; i < N; ++i)                                             \
    for (u32 j = 0; j < N; ++j) {                                         \
      float r;                                                            \
      asm volatile(op " %0, %1, %2, " rm : "=f"(r) : "f"(F(kVals[i])),    \
                   "f"(F(kVals[j])));                                     \
      put(B(r));                                                          \
      put(take_flags());                                                  \
    }
#define OP2_ALL(op) OP2(op, "rne") OP2(op, "rtz") OP2(op, "rdn") OP2(op, "rup") \
  OP2(op, "dyn")

#define OP2N(op) /* no rounding mode */                                   \
  for (u32 i = 0; i < N; ++i)                                             \
    for (u32 j = 0; j < N; ++j) {                                         \
      float r;                                                            \
      asm volatile(op " %0, %1, %2" : "=f"(r) : "f"(F(kVals[i])),         \
                   "f"(F(kVals[j])));                                     \
      put(B(r));                                                          \
      put(take_flags());                                                  \
    }

#define CMP(op)                                                           \
  for (u32 i = 0; i < N; ++i)                                             \
    for (u32 j = 0; j < N; ++j) {                                         \
      u32 r;                                                              \
      asm volatile(op " %0, %1, %2" : "=r"(r) : "f"(F(kVals[i])),         \
                   "f"(F(kVals[j])));                                     \
      put(r);                                                             \
      put(take_flags());                                                  \
    }

#define OP1(op, rm)                                                       \
  for (u32 i = 0; i < N; ++i) {                                           \
    float r;                                                              \
    asm volatile(op " %0, %1, " rm : "=f"(r) : "f"(F(kVals[i])));         \
    put(B(r));                                                            \
    put(take_flags());                                                    \
  }

#define TOINT(op, rm)                                                     \
  for (u32 i = 0; i < N; ++i) {                                           \
    u32 r;                                                                \
    asm volatile(op " %0, %1, " rm : "=r"(r) : "f"(F(kVals[i])));         \
    put(r);                                                               \
    put(take_flags());                                                    \
  }
#define TOINT_ALL(op) TOINT(op, "rne") TOINT(op, "rtz") TOINT(op, "rdn") \
  TOINT(op, "rup") TOINT(op, "rmm") TOINT(op, "dyn")

static const u32 kInts[] = {0,          1,          0xffffffff, 0x7fffffff,
                            0x80000000, 0x01000001, 0x00ffffff, 0xfeffffff,
                            16777217,   0x12345678, 0xfffffff0};
#define NI (sizeof(kInts) / sizeof(kInts[0]))

#define FROMINT(op, rm)                                                   \
  for (u32 i = 0; i < NI; ++i) {                                          \
    float r;                                                              \
    asm volatile(op " %0, %1, " rm : "=f"(r) : "r"(kInts[i]));            \
    put(B(r));                                                            \
    put(take_flags());                                                    \
  }
#define FROMINT_ALL(op) FROMINT(op, "rne") FROMINT(op, "rtz") \
  FROMINT(op, "rdn") FROMINT(op, "rup")

// The fused ops over a smaller set (cubed).
static const u32 kFma[] = {0x00000000, 0x80000000, 0x3f800000, 0xbfc00000,
                           0x7f800000, 0x7fc00000, 0x7fa00000, 0x00800000,
                           0x7f7fffff, 0x33800000};
#define NF (sizeof(kFma) / sizeof(kFma[0]))
#define FMA(op, rm)                                                       \
  for (u32 i = 0; i < NF; ++i)                                            \
    for (u32 j = 0; j < NF; ++j)                                          \
      for (u32 k = 0; k < NF; ++k) {                                      \
        float r;                                                          \
        asm volatile(op " %0, %1, %2, %3, " rm : "=f"(r)                  \
                     : "f"(F(kFma[i])), "f"(F(kFma[j])), "f"(F(kFma[k]))); \
        put(B(r));                                                        \
        put(take_flags());                                                \
      }

int main(void) {
  take_flags();
  for (u32 frm = 0; frm < 4; ++frm) {
    asm volatile("fsrm %0" : : "r"(frm));
    OP2_ALL("fadd.s") OP2_ALL("fsub.s") OP2_ALL("fmul.s") OP2_ALL("fdiv.s")
    OP1("fsqrt.s", "dyn")
    TOINT_ALL("fcvt.w.s") TOINT_ALL("fcvt.wu.s")
    FROMINT_ALL("fcvt.s.w") FROMINT_ALL("fcvt.s.wu")
    if (frm == 1) { OP1("fsqrt.s", "rne") OP1("fsqrt.s", "rup") }
  }
  asm volatile("fsrm zero");
  OP2N("fsgnj.s") OP2N("fsgnjn.s") OP2N("fsgnjx.s") OP2N("fmin.s")
  OP2N("fmax.s")
  CMP("feq.s") CMP("flt.s") CMP("fle.s")
  for (u32 i = 0; i < N; ++i) {
    u32 r;
    asm volatile("fclass.s %0, %1" : "=r"(r) : "f"(F(kVals[i])));
    put(r);
  }
  FMA("fmadd.s", "rne") FMA("fmsub.s", "rtz") FMA("fnmsub.s", "rdn")
  FMA("fnmadd.s", "rup") FMA("fmadd.s", "dyn")
  // NaN-boxing: a double register holding a non-boxed pattern reads as the
  // canonical NaN in single ops; fmv.x.w and fsw take its low bits as
  // they are.
  static volatile u64 raw = 0x123456783f800000ull;
  static volatile u32 stored;
  u32 r1, r2, r3;
  asm volatile(
      "fld ft0, 0(%3)\n"
      "fadd.s ft1, ft0, ft0\n fmv.x.w %0, ft1\n"
      "fmv.x.w %1, ft0\n"
      "fsgnjn.s ft2, ft0, ft0\n fmv.x.w %2, ft2\n"
      "fsw ft0, 0(%4)\n"
      : "=r"(r1), "=r"(r2), "=r"(r3)
      : "r"(&raw), "r"(&stored)
      : "ft0", "ft1", "ft2", "memory");
  put(r1);
  put(r2);
  put(r3);
  put(stored);
  put(take_flags());
  // fcsr as a whole, and the immediate CSR forms on fflags.
  u32 v;
  asm volatile("fscsr %0, %1" : "=r"(v) : "r"(0xffu));
  put(v);
  asm volatile("frcsr %0" : "=r"(v));
  put(v);
  asm volatile("csrrci %0, fflags, 5" : "=r"(v));
  put(v);
  asm volatile("csrrsi %0, fflags, 2" : "=r"(v));
  put(v);
  asm volatile("csrrwi %0, frm, 3" : "=r"(v));
  put(v);
  asm volatile("frcsr %0" : "=r"(v));
  put(v);
  return flush();
}
