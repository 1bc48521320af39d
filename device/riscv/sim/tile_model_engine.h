#ifndef JOULE_DEVICE_RISCV_SIM_TILE_MODEL_ENGINE_H_
#define JOULE_DEVICE_RISCV_SIM_TILE_MODEL_ENGINE_H_

#include <memory>
#include <optional>

#include "device/cpu/thread_pool.h"
#include "device/riscv/sim/cost_table.h"
#include "device/riscv/sim/execution_engine.h"
#include "device/riscv/sim/sim_config.h"

namespace joule::riscv {

// Computes each kernel's result exactly (in the CPU reference engine's
// summation order for fp32, so greedy tokens match it) and charges a
// tile-level timing and energy model of the Occamy-like system: work split
// across clusters, operands streamed HBM -> TCDM by each cluster's DMA in
// double-buffered tiles sized to half the TCDM, compute at a calibrated
// FPU utilization, barriers and a launch overhead per kernel.
class TileModelEngine : public ExecutionEngine {
 public:
  // With `table`, fp32 kernels run at the utilizations the ISS measured
  // for their shapes (cost_table.h) instead of the configuration's
  // constants.
  explicit TileModelEngine(const SimConfig& config,
                           std::optional<CostTable> table = std::nullopt)
      : config_(config),
        table_(std::move(table)),
        pool_(std::make_unique<cpu::ThreadPool>(config.host_threads)) {}

  absl::Status Run(uint32_t kernel, const std::vector<uint64_t>& args,
                   Memory& memory, Counters* counters) override;

  // The charge for work described by its totals (all clusters together).
  struct Work {
    double flops = 0;
    double utilization = 1;  // FPU utilization the compute runs at.
    double hbm_bytes = 0;    // DMA traffic between HBM and TCDM.
    double transfers = 0;    // DMA descriptors (setup cost each).
    double tiles = 1;        // Per cluster; the first tile is not hidden.
    double tcdm_accesses = 0;
    int barriers = 1;
    int clusters_used = 0;  // 0: all.
    // The utilization came from the ISS with the DMA's time inside it.
    bool memory_in_utilization = false;
  };
  void Charge(const Work& work, Counters* counters) const;
  // What a GEMM of Y[N,M] (+)= X[N,K] W[M,K]^T costs (see Gemm()).
  Work GemmWork(double M, double K, double N, bool accumulate) const;

 private:
  absl::Status Gemm(const std::vector<uint64_t>& a, Memory& m, Counters* c);
  absl::Status RmsNorm(const std::vector<uint64_t>& a, Memory& m, Counters* c);
  absl::Status Rope(const std::vector<uint64_t>& a, Memory& m, Counters* c);
  absl::Status Attention(const std::vector<uint64_t>& a, Memory& m,
                         Counters* c);
  absl::Status SwiGlu(const std::vector<uint64_t>& a, Memory& m, Counters* c);
  absl::Status Copy(const std::vector<uint64_t>& a, Memory& m, Counters* c);
  int element_bytes() const;
  bool Measured() const;  // A table applies (fp32 only).
  void Elementwise(const char* kernel, Work* work) const;

  SimConfig config_;
  std::optional<CostTable> table_;
  // The fp32 GEMM's host threads (host time only).
  std::unique_ptr<cpu::ThreadPool> pool_;
};

}  // namespace joule::riscv

#endif  // JOULE_DEVICE_RISCV_SIM_TILE_MODEL_ENGINE_H_
