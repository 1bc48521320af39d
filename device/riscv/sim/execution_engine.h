#ifndef JOULE_DEVICE_RISCV_SIM_EXECUTION_ENGINE_H_
#define JOULE_DEVICE_RISCV_SIM_EXECUTION_ENGINE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "device/riscv/sim/memory.h"
#include "device/riscv/sim/protocol.h"

namespace joule::riscv {

// Runs one launched kernel on simulated memory and charges the counters.
// The tile-level model is one engine; an instruction-level engine running
// cross-compiled RV32 kernels can replace it behind this interface.
class ExecutionEngine {
 public:
  virtual ~ExecutionEngine() = default;
  virtual absl::Status Run(uint32_t kernel, const std::vector<uint64_t>& args,
                           Memory& memory, Counters* counters) = 0;
};

}  // namespace joule::riscv

#endif  // JOULE_DEVICE_RISCV_SIM_EXECUTION_ENGINE_H_
