/* The decoder's element-wise and small kernels (launch.h: JOULE_RMSNORM,
 * JOULE_SWIGLU, JOULE_ROPE, JOULE_ATTENTION), all in singles on data in
 * DRAM, each row, vector or (query, head) pair taken by one of the 8
 * compute cores in turn; and JOULE_DMA_COPY, on the data mover. */
#ifndef JOULE_DEVICE_RISCV_SIM_KERNELS_VECTOR_OPS_H_
#define JOULE_DEVICE_RISCV_SIM_KERNELS_VECTOR_OPS_H_

#include "launch.h"
#include "snitch.h"

int rmsnorm(u32 id, const struct JouleLaunch* l);
int swiglu(u32 id, const struct JouleLaunch* l);
int rope(u32 id, const struct JouleLaunch* l);
int attention(u32 id, const struct JouleLaunch* l);
int dma_copy(u32 id, const struct JouleLaunch* l);

#endif /* JOULE_DEVICE_RISCV_SIM_KERNELS_VECTOR_OPS_H_ */
