// The synthesis top: `forward` for one bitstream's shape (default:
// stories110M with group size 64). Build another shape with e.g.
//   -DJOULE_FPGA_DIM=288 -DJOULE_FPGA_HIDDEN=768 -DJOULE_FPGA_LAYERS=6 ...
#include "device/fpga/kernel/forward.h"

extern "C" void forward(const int8_t* q8, const float* scales,
                        const float* norms, int shared_classifier, int token,
                        int pos, float* key_cache, float* value_cache,
                        float* out) {
  joule::fpga::Forward<joule::fpga::BitstreamShape>(
      q8, scales, norms, shared_classifier, token, pos, key_cache, value_cache,
      out);
}
