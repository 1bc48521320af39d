#ifndef JOULE_DEVICE_RISCV_SIM_CALIBRATION_H_
#define JOULE_DEVICE_RISCV_SIM_CALIBRATION_H_

#include <string>

#include "absl/status/statusor.h"

// Measures, on the instruction-level simulator (one cluster running the ISS
// engine's launches), the fp32 utilizations TileModelEngine's cost table
// holds (cost_table.h): useful FLOPs / (8 cores x 4 FLOPs x cycles), with
// the FLOPs counted as the tile model counts them.
namespace joule::riscv {

absl::StatusOr<double> MeasureGemm(const std::string& kernel_image, int rows,
                                   int k, int tokens);
// One query over `keys` keys, 8 heads of `head` floats.
absl::StatusOr<double> MeasureAttention(const std::string& kernel_image,
                                        int head, int keys);
// "rmsnorm" (8 x 768), "swiglu" (8 x 2048) or "rope" (8 rows of q and k,
// 768 each, heads of 64).
absl::StatusOr<double> MeasureElementwise(const std::string& kernel_image,
                                          const std::string& kernel);

// The whole table over its grid, as cost_table.txt's text.
absl::StatusOr<std::string> CalibrateCostTable(const std::string& kernel_image,
                                               const std::string& header);

}  // namespace joule::riscv

#endif  // JOULE_DEVICE_RISCV_SIM_CALIBRATION_H_
