#ifndef JOULE_DEVICE_FPGA_PACKED_WEIGHTS_H_
#define JOULE_DEVICE_FPGA_PACKED_WEIGHTS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "model/checkpoint.h"

namespace joule::fpga {

// A version 2 checkpoint in the kernel's three buffers (see Shape in
// kernel/forward_kernel.h for the order).
struct PackedWeights {
  std::vector<int8_t> q8;
  std::vector<float> scales;  // One per group of q8, in the same order.
  std::vector<float> norms;
};

// FailedPrecondition for fp32 checkpoints: the FPGA kernel runs int8.
absl::StatusOr<PackedWeights> PackWeights(const model::Checkpoint& ckpt);

}  // namespace joule::fpga

#endif  // JOULE_DEVICE_FPGA_PACKED_WEIGHTS_H_
