#ifndef JOULE_DEVICE_FPGA_KERNEL_BUILT_SHAPES_H_
#define JOULE_DEVICE_FPGA_KERNEL_BUILT_SHAPES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace joule::fpga {

// The kernel's C ABI for one shape.
using KernelFn = void (*)(const int8_t* q8, const float* scales,
                          const float* norms, int shared_classifier, int token,
                          int pos, float* key_cache, float* value_cache,
                          float* out);

// A bitstream's shape and its C-simulated kernel. A real board runs the
// shape its xclbin was synthesized for; emulation offers these.
struct BuiltShape {
  std::string name;
  model::Config config;  // shared_classifier is a runtime argument.
  int group_size;
  KernelFn kernel;
};

const std::vector<BuiltShape>& BuiltShapes();
// The built shape for a model, or nullptr.
const BuiltShape* FindBuiltShape(const model::Config& config, int group_size);

}  // namespace joule::fpga

#endif  // JOULE_DEVICE_FPGA_KERNEL_BUILT_SHAPES_H_
