// RV32I arithmetic and logic, and the M extension with its corner cases
// (division by zero, INT_MIN / -1), over a table of edge values.
#include "sig.h"

static const u32 kVals[] = {0,          1,          2,          3,
                            7,          31,         32,         0x7f,
                            0x80,       0xff,       0x7fff,     0x8000,
                            0xffff,     0x12345678, 0x7fffffff, 0x80000000,
                            0x80000001, 0xfffffffe, 0xffffffff, 0xdeadbeef};
#define N (sizeof(kVals) / sizeof(kVals[0]))

#define RR(op)                                                   \
  for (u32 i = 0; i < N; ++i)                                    \
    for (u32 j = 0; j < N; ++j) {                                \
      u32 r;                                                     \
      asm volatile(op " %0, %1, %2" : "=r"(r) : "r"(kVals[i]), "r"(kVals[j])); \
      put(r);                                                    \
    }

#define RI(op, imm)                                              \
  for (u32 i = 0; i < N; ++i) {                                  \
    u32 r;                                                       \
    asm volatile(op " %0, %1, " #imm : "=r"(r) : "r"(kVals[i])); \
    put(r);                                                      \
  }

#define RI_ALL(op) \
  RI(op, -2048) RI(op, -1) RI(op, 0) RI(op, 1) RI(op, 5) RI(op, 0x555) RI(op, 2047)
#define SH_ALL(op) RI(op, 0) RI(op, 1) RI(op, 7) RI(op, 16) RI(op, 31)

int main(void) {
  RR("add") RR("sub") RR("sll") RR("slt") RR("sltu") RR("xor") RR("srl")
  RR("sra") RR("or") RR("and")
  RR("mul") RR("mulh") RR("mulhsu") RR("mulhu") RR("div") RR("divu")
  RR("rem") RR("remu")
  RI_ALL("addi") RI_ALL("slti") RI_ALL("sltiu") RI_ALL("xori") RI_ALL("ori")
  RI_ALL("andi")
  SH_ALL("slli") SH_ALL("srli") SH_ALL("srai")
  u32 r;
  asm volatile("lui %0, 0xfffff" : "=r"(r));
  put(r);
  asm volatile("lui %0, 0x80000" : "=r"(r));
  put(r);
  asm volatile("lui %0, 1" : "=r"(r));
  put(r);
  // auipc: the distance between two is the same on both machines.
  u32 a, b;
  asm volatile("auipc %0, 0\n auipc %1, 0x12345" : "=r"(a), "=r"(b));
  put(b - a);
  // Writes to x0 are discarded.
  asm volatile("li x0, 5\n mv %0, x0" : "=r"(r));
  put(r);
  return flush();
}
