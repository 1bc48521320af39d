#ifndef JOULE_DEVICE_RISCV_SIM_COST_TABLE_H_
#define JOULE_DEVICE_RISCV_SIM_COST_TABLE_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace joule::riscv {

// FPU utilizations the instruction-level simulator measured for the fp32
// kernels, per shape, for TileModelEngine to charge instead of its
// constant utilizations. Written by
//   bazel run -c opt //device/riscv/sim:calibrate_tile_model
// (the committed cost_table.txt names the ISS commit it ran at). Each is
// useful FLOPs / (8 cores x 4 fp32 FLOPs x cycles) of one cluster running
// the ISS engine's launches for that work with its operands in HBM, so the
// DMA's time is inside it.
//
// Text, one entry per line ('#' starts a comment):
//   gemm <rows per cluster> <K> <tokens> <utilization>
//   attention <head size> <keys> <utilization>
//   rmsnorm|swiglu|rope <utilization>
// The gemm and attention entries must fill a grid (every combination of the
// values given on each axis); lookups between grid points interpolate in
// log2 of each coordinate, and clamp outside.
class CostTable {
 public:
  static absl::StatusOr<CostTable> Parse(const std::string& text);
  static absl::StatusOr<CostTable> Load(const std::string& path);

  double Gemm(double rows, double k, double tokens) const;
  double Attention(double head, double keys) const;
  // "rmsnorm", "swiglu" or "rope"; nullopt if the table has no entry.
  std::optional<double> Elementwise(const std::string& kernel) const;

 private:
  // A full grid over up to three axes, values in row-major order.
  struct Grid {
    std::vector<std::vector<double>> axes;
    std::vector<double> values;
    double At(const std::vector<double>& point) const;
  };
  static absl::StatusOr<Grid> MakeGrid(
      const std::string& kernel,
      const std::map<std::vector<double>, double>& points, size_t dims);

  Grid gemm_, attention_;
  std::map<std::string, double> elementwise_;
};

}  // namespace joule::riscv

#endif  // JOULE_DEVICE_RISCV_SIM_COST_TABLE_H_
