// Double precision: every D instruction over edge values in every
// rounding mode, each result with the flags it raised, and the
// conversions between singles and doubles.
#include "sig.h"

static const u64 kVals[] = {
    0x0000000000000000ull, 0x8000000000000000ull, 0x3ff0000000000000ull,
    0xbff0000000000000ull, 0x3ff8000000000000ull, 0x3fb999999999999aull,
    0x4008000000000000ull, 0xc004000000000000ull, 0x0000000000000001ull,
    0x0010000000000000ull, 0x800fffffffffffffull, 0x7fefffffffffffffull,
    0xffefffffffffffffull, 0x7ff0000000000000ull, 0xfff0000000000000ull,
    0x7ff8000000000000ull, 0x7ff4000000000000ull, 0xfff8000000000001ull,
    0x41dfffffffc00000ull, 0xc1e0000000200000ull, 0x41f0000000000000ull,
    0x3fe0000000000000ull, 0x4004000000000000ull, 0xbfe0000000000000ull,
    0x47efffffe0000000ull, 0x36a0000000000000ull, 0x3ff0000010000000ull,
    0x41efffffffe00000ull, 0x3810000000000000ull, 0xc1e0000000000000ull};
#define N (sizeof(kVals) / sizeof(kVals[0]))

static inline double F(u64 b) {
  volatile u64 t = b;
  double d;
  asm volatile("fld %0, 0(%1)" : "=f"(d) : "r"(&t) : "memory");
  return d;
}
static inline void putd(double d) {
  volatile u64 t;
  asm volatile("fsd %1, 0(%0)" : : "r"(&t), "f"(d) : "memory");
  put64(t);
}
static inline u32 B(float f) {
  u32 b;
  asm volatile("fmv.x.w %0, %1" : "=r"(b) : "f"(f));
  return b;
}
static inline float S(u32 b) {
  float f;
  asm volatile("fmv.w.x %0, %1" : "=f"(f) : "r"(b));
  return f;
}

#define OP2(op, rm)                                                       \
  for (u32 i = 0; i < N; ++i)                                             \
    for (u32 j = 0; j < N; ++j) {                                         \
      double r;                                                           \
      asm volatile(op " %0, %1, %2, " rm : "=f"(r) : "f"(F(kVals[i])),    \
                   "f"(F(kVals[j])));                                     \
      putd(r);                                                            \
      put(take_flags());                                                  \
    }
#define OP2_ALL(op) OP2(op, "rne") OP2(op, "rtz") OP2(op, "rdn") OP2(op, "rup") \
  OP2(op, "dyn")
#define OP2N(op)                                                          \
  for (u32 i = 0; i < N; ++i)                                             \
    for (u32 j = 0; j < N; ++j) {                                         \
      double r;                                                           \
      asm volatile(op " %0, %1, %2" : "=f"(r) : "f"(F(kVals[i])),         \
                   "f"(F(kVals[j])));                                     \
      putd(r);                                                            \
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
#define TOINT(op, rm)                                                     \
  for (u32 i = 0; i < N; ++i) {                                           \
    u32 r;                                                                \
    asm volatile(op " %0, %1, " rm : "=r"(r) : "f"(F(kVals[i])));         \
    put(r);                                                               \
    put(take_flags());                                                    \
  }
#define TOINT_ALL(op) TOINT(op, "rne") TOINT(op, "rtz") TOINT(op, "rdn") \
  TOINT(op, "rup") TOINT(op, "rmm") TOINT(op, "dyn")
#define TOSINGLE(rm)                                                      \
  for (u32 i = 0; i < N; ++i) {                                           \
    float r;                                                              \
    asm volatile("fcvt.s.d %0, %1, " rm : "=f"(r) : "f"(F(kVals[i])));    \
    put(B(r));                                                            \
    put(take_flags());                                                    \
  }

static const u32 kInts[] = {0, 1, 0xffffffff, 0x7fffffff, 0x80000000,
                            0x12345678};
#define NI (sizeof(kInts) / sizeof(kInts[0]))
static const u32 kSingles[] = {0x00000000, 0x80000000, 0x3f800000,
                               0x00000001, 0x7f800000, 0x7fc00000,
                               0x7fa00000, 0xff7fffff, 0xffc00001};
#define NS (sizeof(kSingles) / sizeof(kSingles[0]))

static const u64 kFma[] = {
    0x0000000000000000ull, 0x8000000000000000ull, 0x3ff0000000000000ull,
    0xbff8000000000000ull, 0x7ff0000000000000ull, 0x7ff8000000000000ull,
    0x7ff4000000000000ull, 0x0010000000000000ull, 0x7fefffffffffffffull,
    0x3ca0000000000000ull};
#define NF (sizeof(kFma) / sizeof(kFma[0]))
#define FMA(op, rm)                                                       \
  for (u32 i = 0; i < NF; ++i)                                            \
    for (u32 j = 0; j < NF; ++j)                                          \
      for (u32 k = 0; k < NF; ++k) {                                      \
        double r;                                                         \
        asm volatile(op " %0, %1, %2, %3, " rm : "=f"(r)                  \
                     : "f"(F(kFma[i])), "f"(F(kFma[j])), "f"(F(kFma[k]))); \
        putd(r);                                                          \
        put(take_flags());                                                \
      }

int main(void) {
  take_flags();
  for (u32 frm = 0; frm < 4; ++frm) {
    asm volatile("fsrm %0" : : "r"(frm));
    OP2_ALL("fadd.d") OP2_ALL("fsub.d") OP2_ALL("fmul.d") OP2_ALL("fdiv.d")
    for (u32 i = 0; i < N; ++i) {
      double r;
      asm volatile("fsqrt.d %0, %1" : "=f"(r) : "f"(F(kVals[i])));
      putd(r);
      put(take_flags());
    }
    TOINT_ALL("fcvt.w.d") TOINT_ALL("fcvt.wu.d")
    TOSINGLE("dyn") TOSINGLE("rne") TOSINGLE("rtz") TOSINGLE("rdn")
    TOSINGLE("rup")
  }
  asm volatile("fsrm zero");
  for (u32 i = 0; i < NI; ++i) {
    double r;
    asm volatile("fcvt.d.w %0, %1" : "=f"(r) : "r"(kInts[i]));
    putd(r);
    asm volatile("fcvt.d.wu %0, %1" : "=f"(r) : "r"(kInts[i]));
    putd(r);
    put(take_flags());
  }
  for (u32 i = 0; i < NS; ++i) {
    double r;
    asm volatile("fcvt.d.s %0, %1" : "=f"(r) : "f"(S(kSingles[i])));
    putd(r);
    put(take_flags());
  }
  OP2N("fsgnj.d") OP2N("fsgnjn.d") OP2N("fsgnjx.d") OP2N("fmin.d")
  OP2N("fmax.d")
  CMP("feq.d") CMP("flt.d") CMP("fle.d")
  for (u32 i = 0; i < N; ++i) {
    u32 r;
    asm volatile("fclass.d %0, %1" : "=r"(r) : "f"(F(kVals[i])));
    put(r);
  }
  FMA("fmadd.d", "rne") FMA("fmsub.d", "rtz") FMA("fnmsub.d", "rdn")
  FMA("fnmadd.d", "rup")
  return flush();
}
