// Snitch's extensions for the kernels and the cluster test programs,
// written from the encodings in docs/riscv_iss_sources.md (sections 1-4
// and 6): the hardware barrier (CSR 0x7C2), SSR configuration (scfgwi,
// custom-1 funct3 2, immediate = data mover | word << 5), the SSR enable
// (CSR 0x7C0), the DMA (custom-1 funct3 0) and, inside the caller's asm,
// frep.o (custom-0) and the packed-single instructions.
#ifndef JOULE_DEVICE_RISCV_SIM_KERNELS_SNITCH_H_
#define JOULE_DEVICE_RISCV_SIM_KERNELS_SNITCH_H_

#include "syscall.h"

typedef unsigned int u32;
typedef unsigned long long u64;

#define TCDM ((volatile char*)0x10000000)

static inline u32 cycle(void) {
  u32 r;
  asm volatile("csrr %0, mcycle" : "=r"(r)::"memory");
  return r;
}
static inline void barrier(void) { asm volatile("csrr x0, 0x7C2" ::: "memory"); }
static inline void ssr_enable(void) { asm volatile("csrsi 0x7C0, 1" ::: "memory"); }
static inline void ssr_disable(void) { asm volatile("csrci 0x7C0, 1" ::: "memory"); }

#define SSR_CFG(value, dm, word) \
  asm volatile(".insn i 0x2b, 2, x0, %0, %1" ::"r"(value), "i"((dm) | ((word) << 5)))
#define SSR_REPEAT(dm, n) SSR_CFG((n) - 1, dm, 1)
#define SSR_BOUND(dm, d, n) SSR_CFG((n) - 1, dm, 2 + (d))
#define SSR_STRIDE(dm, d, s) SSR_CFG(s, dm, 6 + (d))
// Starts a read (write) job over `dims` loops at ptr.
#define SSR_READ(dm, dims, ptr) SSR_CFG((u32)(ptr), dm, 24 + (dims) - 1)
#define SSR_WRITE(dm, dims, ptr) SSR_CFG((u32)(ptr), dm, 28 + (dims) - 1)

static inline void emit(const void* p, u32 bytes) { joule_write(p, bytes); }

// The DMA (the data mover core only): source and destination (their high
// words zero: the cluster's addresses are 32-bit), strides and rows for
// 2-D, a start that returns the transfer id, and the last completed id.
#define DMSRC(lo) asm volatile(".insn r 0x2b, 0, 0, x0, %0, x0" ::"r"(lo))
#define DMDST(lo) asm volatile(".insn r 0x2b, 0, 1, x0, %0, x0" ::"r"(lo))
#define DMSTR(s, d) \
  asm volatile(".insn r 0x2b, 0, 6, x0, %0, %1" ::"r"(s), "r"(d))
#define DMREP(n) asm volatile(".insn r 0x2b, 0, 7, x0, %0, x0" ::"r"(n))

static inline u32 dmcpy_1d(u32 size) {
  u32 id;
  asm volatile(".insn r 0x2b, 0, 2, %0, %1, x0" : "=r"(id) : "r"(size) : "memory");
  return id;
}
static inline u32 dmcpy_2d(u32 size) {
  u32 id;  // Config 2 (enable_2d) in the rs2 field: "x2".
  asm volatile(".insn r 0x2b, 0, 2, %0, %1, x2" : "=r"(id) : "r"(size) : "memory");
  return id;
}
static inline u32 dma_completed(void) {
  u32 v;
  asm volatile(".insn r 0x2b, 0, 4, %0, x0, x0" : "=r"(v)::"memory");
  return v;
}
static inline void dma_wait(u32 id) {
  while (dma_completed() < id) {
  }
}
// Starts a 1-D copy of `bytes` and returns its id.
static inline u32 dma_1d(void* dst, const void* src, u32 bytes) {
  DMSRC((u32)src);
  DMDST((u32)dst);
  return dmcpy_1d(bytes);
}

#endif  // JOULE_DEVICE_RISCV_SIM_KERNELS_SNITCH_H_
