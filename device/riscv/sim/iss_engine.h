#ifndef JOULE_DEVICE_RISCV_SIM_ISS_ENGINE_H_
#define JOULE_DEVICE_RISCV_SIM_ISS_ENGINE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "device/riscv/sim/execution_engine.h"
#include "device/riscv/sim/iss/energy.h"
#include "device/riscv/sim/iss/kernel_runner.h"
#include "device/riscv/sim/kernel_args.h"
#include "device/riscv/sim/sim_config.h"

namespace joule::riscv {

// Runs the protocol's kernels by launching the cross-compiled kernel image
// (device/riscv/sim/kernels) on instruction-level Snitch clusters
// (device/riscv/sim/iss): results come from the kernels' own arithmetic,
// cycles from the clusters' timing model, energy from their counted events
// (iss/energy.h). fp32 only.
//
// A launch is split into items (GEMM row blocks, groups of rows, runs of
// queries) and each item runs as one kernel launch on the cluster that has
// been busy the shortest so far, so the clusters share the work as a work
// queue would; the launch takes as long as its busiest cluster. Each
// cluster's DMA has its own share of HBM bandwidth
// (ClusterConfig::hbm_bytes_per_cycle: 24 x 16 B = the system's 384 B a
// cycle). Not modeled: the host's offload and wake-up per launch, and
// traffic between clusters.
class IssEngine : public ExecutionEngine {
 public:
  static absl::StatusOr<std::unique_ptr<IssEngine>> Create(
      const SimConfig& config, const std::string& kernel_image);

  absl::Status Run(uint32_t kernel, const std::vector<uint64_t>& args,
                   Memory& memory, Counters* counters) override;

  // Instructions the clusters retired since the engine was created.
  uint64_t instructions_simulated() const { return instructions_; }

  // Host-side buffers of one item, placed in the cluster's DRAM after the
  // image.
  class Staging;

 private:
  IssEngine(const SimConfig& config, iss::KernelImage image);

  absl::Status Gemm(const GemmArgs& g, Memory& mem);
  absl::Status RmsNorm(const RmsNormArgs& r, Memory& mem);
  absl::Status Rope(const RopeArgs& r, Memory& mem);
  absl::Status Attention(const AttentionArgs& r, Memory& mem);
  absl::Status SwiGlu(const SwiGluArgs& r, Memory& mem);
  absl::Status Copy(const CopyArgs& r, Memory& mem);
  // Transfers none of which reads what an earlier one writes.
  absl::Status CopyWave(const std::vector<CopyTransfer>& wave, Memory& mem);
  Staging NewStaging() const;

  // Runs one item on the least busy cluster (or on *cluster if that is set;
  // set to the one chosen) and returns its outputs (as staged).
  absl::StatusOr<std::vector<std::vector<uint8_t>>> Exec(
      uint32_t kernel, const std::vector<uint32_t>& args,
      const Staging& staging, int* cluster = nullptr);
  // The items' totals since the launch began, charged to `counters`.
  void Charge(Counters* counters);

  SimConfig config_;
  iss::KernelImage image_;
  iss::ClusterConfig cluster_config_;
  iss::EnergyModel energy_;
  // Per cluster, the cycles it has been busy in the current launch.
  std::vector<uint64_t> busy_;
  iss::EnergyEvents events_;  // The current launch's, all clusters.
  uint64_t instructions_ = 0;
};

}  // namespace joule::riscv

#endif  // JOULE_DEVICE_RISCV_SIM_ISS_ENGINE_H_
