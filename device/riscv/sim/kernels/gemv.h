/* Matrix-vector products (JOULE_GEMV_* in launch.h). */
#ifndef JOULE_DEVICE_RISCV_SIM_KERNELS_GEMV_H_
#define JOULE_DEVICE_RISCV_SIM_KERNELS_GEMV_H_

#include "launch.h"
#include "snitch.h"

/* Runs one GEMV launch on core `id`; returns a JouleKernelStatus. */
int gemv(u32 id, const struct JouleLaunch* l);

#endif /* JOULE_DEVICE_RISCV_SIM_KERNELS_GEMV_H_ */
