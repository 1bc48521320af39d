#ifndef JOULE_DEVICE_FPGA_KERNEL_FORWARD_H_
#define JOULE_DEVICE_FPGA_KERNEL_FORWARD_H_

#include <cstdint>

#include "device/fpga/kernel/forward_kernel.h"

#ifndef JOULE_FPGA_DIM
#define JOULE_FPGA_DIM 768
#define JOULE_FPGA_HIDDEN 2048
#define JOULE_FPGA_LAYERS 12
#define JOULE_FPGA_HEADS 12
#define JOULE_FPGA_KV_HEADS 12
#define JOULE_FPGA_VOCAB 32000
#define JOULE_FPGA_SEQ_LEN 1024
#define JOULE_FPGA_GS 64
#endif

namespace joule::fpga {
using BitstreamShape =
    Shape<JOULE_FPGA_DIM, JOULE_FPGA_HIDDEN, JOULE_FPGA_LAYERS,
          JOULE_FPGA_HEADS, JOULE_FPGA_KV_HEADS, JOULE_FPGA_VOCAB,
          JOULE_FPGA_SEQ_LEN, JOULE_FPGA_GS>;
}  // namespace joule::fpga

// The kernel's C ABI, as the xclbin names it.
extern "C" void forward(const int8_t* q8, const float* scales,
                        const float* norms, int shared_classifier, int token,
                        int pos, float* key_cache, float* value_cache,
                        float* out);

#endif  // JOULE_DEVICE_FPGA_KERNEL_FORWARD_H_
