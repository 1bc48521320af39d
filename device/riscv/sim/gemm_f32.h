#ifndef JOULE_DEVICE_RISCV_SIM_GEMM_F32_H_
#define JOULE_DEVICE_RISCV_SIM_GEMM_F32_H_

#include <cstdint>

#include "device/cpu/thread_pool.h"

namespace joule::riscv {

// Y[n][m] (+)= sum over k of W[m][k] X[n][k] (W: M x K, X: N x K, Y: N x
// M, row-major), in the CPU reference engine's order: for each output, k
// ascending, each product rounded to float and then added in float (no
// fused multiply-add). Bit-identical to that scalar loop on every CPU;
// with AVX2 eight rows share a vector and four such blocks run at once,
// with AVX-512 (several tokens) sixteen. With `pool`, large products split
// their rows over its threads (same bits).
void GemmF32Exact(const float* w, const float* x, float* y, uint64_t m,
                  uint64_t k, uint64_t n, bool accumulate,
                  cpu::ThreadPool* pool = nullptr);

// The same with a chosen instruction set, for tests that check every path
// this CPU has: "scalar", "avx2" or "avx512". False if it lacks that one.
bool GemmF32ExactWith(const char* isa, const float* w, const float* x, float* y,
                      uint64_t m, uint64_t k, uint64_t n, bool accumulate);

}  // namespace joule::riscv

#endif  // JOULE_DEVICE_RISCV_SIM_GEMM_F32_H_
