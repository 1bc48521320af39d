#ifndef JOULE_DEVICE_FPGA_VU9P_MODEL_H_
#define JOULE_DEVICE_FPGA_VU9P_MODEL_H_

#include <cstdint>
#include <string>

#include "model/config.h"

namespace joule::fpga {

// A documented model of the kernel as synthesized for a Xilinx VU9P board
// (as HLSTransform's AWS F1 target): the figures an emulated board reports,
// labeled `modeled`. Cycles come from the kernel's loop structure: each
// matrix-vector product streams its int8 rows at `mac_lanes` MACs per cycle
// (COLS_LOOP unrolled with partial sums, rows flattened, II=1) plus one
// pipeline fill;
// attention, softmax and element-wise loops at one element per cycle plus
// fill; limited by DDR bandwidth for the weights when that is slower.
struct Vu9pModel {
  double clock_hz = 200e6;             // HLS kernel clock.
  int mac_lanes = 32;                  // Parallel fp32 MACs per matvec.
  int pipeline_fill = 24;              // Cycles per pipelined loop start.
  double ddr_bytes_per_second = 64e9;  // 4 DDR4-2400 channels (F1).
  double board_watts = 35.0;           // VU9P board under this load.
  double idle_watts = 20.0;

  // Cycles to compute one token at position `pos`.
  int64_t CyclesPerToken(const model::Config& c, int pos) const;
  double SecondsPerToken(const model::Config& c, int pos) const;
  std::string Describe() const;
};

}  // namespace joule::fpga

#endif  // JOULE_DEVICE_FPGA_VU9P_MODEL_H_
