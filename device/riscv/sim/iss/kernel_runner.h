#ifndef JOULE_DEVICE_RISCV_SIM_ISS_KERNEL_RUNNER_H_
#define JOULE_DEVICE_RISCV_SIM_ISS_KERNEL_RUNNER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "device/riscv/sim/iss/cluster.h"
#include "device/riscv/sim/iss/cluster_config.h"

namespace joule::iss {

// The kernel image (device/riscv/sim/kernels) and how to launch one of its
// kernels on a simulated cluster: the launch descriptor and the input
// buffers are written into DRAM, the cluster runs until every core exits,
// and the output buffers are read back. A launch sees a cluster exactly as
// freshly loaded: one loaded for an earlier launch with the same
// ClusterConfig is reset (Cluster::Reset) and reused, since loading costs
// as much as a small kernel's run; concurrent launches each get their own.
// Copies of a KernelImage share those clusters.
class KernelImage {
 public:
  static absl::StatusOr<KernelImage> FromFile(const std::string& path);

  // The first DRAM address past the image, 4 KiB aligned, where a
  // launch's buffers may go.
  uint32_t heap_base() const { return heap_base_; }

  struct Buffer {
    uint32_t addr = 0;
    std::vector<uint8_t> bytes;
  };
  struct Result {
    ClusterRun run;
    std::vector<std::vector<uint8_t>> outputs;  // As `outputs` asked.
  };
  // Runs kernel `kernel` (a JouleKernel) with `args`; `outputs` are
  // (address, bytes) to read back. Fails if a core faults or refuses the
  // launch (its status named).
  absl::StatusOr<Result> Launch(
      uint32_t kernel, const std::vector<uint32_t>& args,
      const std::vector<Buffer>& inputs,
      const std::vector<std::pair<uint32_t, uint32_t>>& outputs,
      const ClusterConfig& config = {}) const;

 private:
  class ClusterCache;
  absl::StatusOr<Result> Run(
      Cluster& cluster, uint32_t kernel, const std::vector<uint32_t>& args,
      const std::vector<Buffer>& inputs,
      const std::vector<std::pair<uint32_t, uint32_t>>& outputs) const;

  std::vector<uint8_t> elf_;
  uint32_t launch_addr_ = 0;
  uint32_t heap_base_ = 0;
  // Null in a moved-from image: its launches load a cluster each.
  std::shared_ptr<ClusterCache> cache_;
};

}  // namespace joule::iss

#endif  // JOULE_DEVICE_RISCV_SIM_ISS_KERNEL_RUNNER_H_
