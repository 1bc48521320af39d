/* Matrix products (JOULE_GEMM_* in launch.h). */
#ifndef JOULE_DEVICE_RISCV_SIM_KERNELS_GEMM_H_
#define JOULE_DEVICE_RISCV_SIM_KERNELS_GEMM_H_

#include "launch.h"
#include "snitch.h"

/* Runs one GEMM launch on core `id`; returns a JouleKernelStatus. */
int gemm(u32 id, const struct JouleLaunch* l);

#endif /* JOULE_DEVICE_RISCV_SIM_KERNELS_GEMM_H_ */
