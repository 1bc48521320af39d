#ifndef JOULE_DEVICE_RISCV_SIM_ISS_REPORT_H_
#define JOULE_DEVICE_RISCV_SIM_ISS_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "device/riscv/sim/iss/energy.h"

// The instruction-level simulator's headline figures, every one SIMULATED
// from what the kernels executed: GEMM utilization and throughput on one
// cluster, the optimized kernels' speedup over the baseline on a decoder
// layer, energy efficiency and the simulator's own speed.
namespace joule::riscv {

struct IssGemmFigure {
  std::string precision;  // "fp64" or "fp32".
  int m = 0, n = 0, k = 0;
  uint64_t cycles = 0;
  double fpu_utilization = 0;  // FPU-busy cycles of the 8 compute cores.
  double gflops = 0;           // One cluster at 1 GHz.
  double gflops_per_watt = 0;  // With one cluster's static power.
};

struct IssReport {
  std::vector<IssGemmFigure> gemm;
  // Baseline over optimized cycles of one stories15M-sized decoder layer
  // (dim 288, hidden 768, 6 heads): a 64-token prompt pass (NAR) and one
  // token after 64 (AR).
  double speedup_nar = 0, speedup_ar = 0;
  uint64_t nar_cycles[2] = {}, ar_cycles[2] = {};  // {optimized, baseline}.
  // The largest fp32 and fp64 GEMMs' FLOPs per joule, / 1e9.
  double gflops_per_watt = 0, gflops_per_watt_fp64 = 0;
  // Simulated instructions per host second over the whole report.
  double mips = 0;
};

absl::StatusOr<IssReport> RunIssReport(const std::string& kernel_image);
// One line: {"gemm": [...], "speedup": {"nar", "ar"}, "gflops_per_watt",
// "mips", ...}.
std::string IssReportJson(const IssReport& report);

// The energy model's calibration run (one cluster's optimized fp64 GEMM,
// 64^3) and the model fitted to it.
absl::StatusOr<iss::EnergyModel> CalibrateEnergy(
    const std::string& kernel_image);

}  // namespace joule::riscv

#endif  // JOULE_DEVICE_RISCV_SIM_ISS_REPORT_H_
