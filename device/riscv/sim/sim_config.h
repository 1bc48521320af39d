#ifndef JOULE_DEVICE_RISCV_SIM_SIM_CONFIG_H_
#define JOULE_DEVICE_RISCV_SIM_SIM_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace joule::riscv {

enum class Precision { kFp64 = 0, kFp32 = 1, kFp16 = 2, kFp8 = 3 };
const char* PrecisionName(Precision p);
absl::StatusOr<Precision> ParsePrecision(const std::string& name);

// The simulated Occamy-like system. Defaults follow the Occamy chiplet of
// Potocnik et al. (arXiv 2405.19284) and the Snitch cluster; see
// sim_config.cc for each figure's source. Timing and energy parameters are
// a model, calibrated to the paper's reported figures, not measurements.
struct SimConfig {
  // Topology.
  int groups = 6;
  int clusters_per_group = 4;
  int cores_per_cluster =
      8;  // Compute cores; each cluster also has a DMA core.
  double frequency_hz = 1e9;
  int64_t tcdm_bytes = 128 * 1024;
  int tcdm_banks = 32;
  // Memory system.
  double dma_bytes_per_cycle = 64;  // Per cluster: 512-bit DMA.
  int dma_setup_cycles = 60;        // Per transfer descriptor.
  double hbm_bytes_per_second = 384e9;
  int64_t hbm_bytes = int64_t{8} << 30;
  // Arithmetic: peak FLOP/cycle per core, by precision (FMA counts 2).
  double peak_flops_per_cycle[4] = {2, 4, 8, 16};
  // Achieved FPU utilization, by precision: GEMM (SSR + FREP), attention
  // (FlashAttention-2 with the softmax on the cores), element-wise kernels.
  double gemm_utilization[4] = {0.90, 0.85, 0.80, 0.75};
  double attention_utilization[4] = {0.70, 0.65, 0.60, 0.55};
  double elementwise_utilization = 0.25;
  // DMA double buffering overlaps each tile's load with the previous
  // tile's compute; off, every load waits (the unoptimized baseline).
  bool double_buffering = true;
  int barrier_cycles = 200;           // Cluster-wide; a global one costs 5x.
  int launch_overhead_cycles = 1500;  // Host offload and wake-up per kernel.
  // Energy model.
  double joules_per_flop[4] = {20e-12, 10e-12, 5e-12, 1.6e-12};
  double joules_per_hbm_byte = 30e-12;
  double joules_per_tcdm_access = 1.5e-12;  // One 64-bit bank access.
  double static_watts = 2.5;
  // Host threads the tile model's fp32 GEMM may use (0: one per core).
  // Host time only: no simulated figure depends on it.
  int host_threads = 0;
  // Arithmetic the kernels compute in (and are charged for).
  Precision precision = Precision::kFp32;

  int clusters() const { return groups * clusters_per_group; }
  int compute_cores() const { return clusters() * cores_per_cluster; }
  double peak_flops(Precision p) const {
    return compute_cores() * peak_flops_per_cycle[static_cast<int>(p)] *
           frequency_hz;
  }
  std::string Describe() const;
};

// Reads `key = value` lines (# starts a comment) over the defaults; unknown
// keys and bad values are errors that name the line.
absl::StatusOr<SimConfig> ParseSimConfig(const std::string& text);
absl::StatusOr<SimConfig> LoadSimConfig(const std::string& path);

}  // namespace joule::riscv

#endif  // JOULE_DEVICE_RISCV_SIM_SIM_CONFIG_H_
