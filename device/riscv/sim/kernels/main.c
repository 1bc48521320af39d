/* The kernel image: every core reads the launch the host wrote at
 * `joule_launch` and runs its part of that kernel. */
#include "gemm.h"
#include "gemv.h"
#include "launch.h"
#include "vector_ops.h"

struct JouleLaunch joule_launch __attribute__((used));

int main(u32 id) {
  switch (joule_launch.kernel) {
    case JOULE_GEMM_FP64_OPT:
    case JOULE_GEMM_FP64_BASE:
    case JOULE_GEMM_FP32_OPT:
    case JOULE_GEMM_FP32_BASE:
      return gemm(id, &joule_launch);
    case JOULE_GEMV_FP32_OPT:
    case JOULE_GEMV_FP32_BASE:
      return gemv(id, &joule_launch);
    case JOULE_RMSNORM:
      return rmsnorm(id, &joule_launch);
    case JOULE_SWIGLU:
      return swiglu(id, &joule_launch);
    case JOULE_ROPE:
      return rope(id, &joule_launch);
    case JOULE_ATTENTION:
      return attention(id, &joule_launch);
    case JOULE_DMA_COPY:
      return dma_copy(id, &joule_launch);
    default:
      return JOULE_UNKNOWN_KERNEL;
  }
}
