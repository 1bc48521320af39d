#ifndef JOULE_DEVICE_RISCV_SIM_ISS_CLUSTER_H_
#define JOULE_DEVICE_RISCV_SIM_ISS_CLUSTER_H_

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "device/riscv/sim/iss/cluster_config.h"
#include "device/riscv/sim/iss/decode.h"
#include "device/riscv/sim/iss/elf.h"
#include "device/riscv/sim/iss/hart.h"
#include "device/riscv/sim/iss/memory.h"
#include "device/riscv/sim/iss/ssr.h"

namespace joule::iss {

// What one core did, counted as it ran.
struct CoreCounters {
  uint64_t cycles = 0;        // When it finished (its int and FP pipes).
  uint64_t instructions = 0;  // Retired by the integer core.
  uint64_t fpu_issues = 0;    // FP instructions issued (FREP repeats too).
  uint64_t fpu_busy = 0;      // Of those, arithmetic (the FPU's work).
  uint64_t flops_fp64 = 0;
  uint64_t flops_fp32 = 0;
  uint64_t tcdm_accesses = 0;
  uint64_t tcdm_conflicts = 0;  // Cycles lost to a busy bank.
  uint64_t dram_accesses = 0;
  uint64_t frep_repeats = 0;  // Instructions issued by the sequencer.
};

// The cluster's DMA engine, as a whole run used it.
struct DmaCounters {
  uint64_t transfers = 0;
  uint64_t bytes = 0;
  uint64_t dram_bytes = 0;   // Of those, read from or written to DRAM.
  uint64_t busy_cycles = 0;  // Cycles with a transfer in flight.
};

struct ClusterRun {
  // Every core exited (ecall exit); otherwise `error` says why not.
  bool ok = false;
  std::string error;
  uint64_t cycles = 0;  // The last core's finish.
  std::vector<CoreCounters> cores;
  DmaCounters dma;
  std::vector<int> exit_codes;
  std::string out;  // What the cores wrote (ecall write).
};

// One Snitch cluster: compute cores with Xssr, Xfrep and Xfvec, data
// mover cores, a banked TCDM, DRAM, and the hardware barrier, run by one
// host thread. Each core's time is a scoreboard: an integer pipeline and
// an FP pipeline issuing one instruction per cycle each, register results
// ready after their unit's latency (ClusterConfig), a TCDM access delayed
// while its bank serves another in the same cycle. The cores advance in
// time order, the one furthest behind first, in quanta of
// ClusterConfig::quantum cycles.
//
// Programs are ELF executables linked into DRAM. Every core starts at the
// entry point with mhartid = its index and sp at the top of its own 1 KiB
// of TCDM stack, staggered by 8 bytes per core (snitch_cluster's crt0
// layout: SNRT_LOG2_STACK_SIZE 10);
// ecall exit (93) ends a core, ecall write (64) appends to the output.
// The barrier is snitch_cluster's: any access to CSR 0x7C2 blocks the core
// until every core has made one. CSR 0x7C0 bit 0 enables the SSRs.
class Cluster : public Environment {
 public:
  explicit Cluster(ClusterConfig config = {});
  ~Cluster() override;

  absl::Status Load(absl::Span<const uint8_t> elf);
  // Returns a loaded cluster to the state Cluster(config) + Load(elf) left
  // it in, without parsing, mapping or predecoding the ELF again: what was
  // written since is zeroed and the ELF's segments rewritten, the cores
  // are made anew, and the DMA engine, TCDM banks, output and error start
  // over. Fails if nothing was loaded.
  absl::Status Reset();
  // Runs until every core exits, one faults, or max_cycles pass.
  ClusterRun Run(uint64_t max_cycles);

  Memory& memory() { return mem_; }
  const ClusterConfig& config() const { return config_; }
  // The loaded program's symbols (buffers to fill and read back).
  const absl::flat_hash_map<std::string, uint32_t>& symbols() const {
    return symbols_;
  }

  bool Ecall(Hart& hart, Stop* stop) override;

 private:
  struct Core;
  void WriteSegments();
  void MakeCores();
  void ClearBanks();
  void Step(Core& c);
  bool IssueFp(Core& c, const Insn& in, uint64_t t, Stop* stop);
  void Custom(Core& c, const Insn& in, uint64_t t);
  void ReplayFrep(Core& c);
  void Csr(Core& c, const Insn& in, uint64_t t);
  void Fail(Core& c, const Stop& stop);
  void Dma(Core& c, const Insn& in, uint64_t t);
  // Performs, in order, the DMA transfers finished by cycle `now` (all of
  // them if `upto_id` is reached first); false (with error_) if one
  // reaches outside memory.
  bool RetireDma(uint64_t now);
  bool OwnStack(const Core& c, uint32_t addr) const;
  std::string StackMessage(const Core& c, uint32_t addr) const;
  // The cycle a memory access issued at `t` is served; counts it.
  uint64_t Access(Core& c, uint32_t addr, uint64_t t);
  void TryReleaseBarrier();

  ClusterConfig config_;
  Memory mem_;
  std::vector<std::unique_ptr<Core>> cores_;
  absl::flat_hash_map<std::string, uint32_t> symbols_;
  // The loaded ELF, kept for Reset: its segments, entry point and
  // predecoded code (shared by the cores).
  std::vector<ElfImage::Segment> segments_;
  uint32_t entry_ = 0;
  uint32_t code_base_ = 0;
  std::shared_ptr<const std::vector<Insn>> code_;
  // Per TCDM bank, the cycles it last served (a small ring): an access is
  // granted the first cycle at or after its request not among them.
  std::vector<std::array<uint64_t, 8>> bank_busy_;
  std::vector<uint8_t> bank_next_;
  // The DMA engine (snitch_cluster's iDMA frontend, docs/riscv_iss_
  // sources.md section 3): its registers, and transfers in flight, each
  // copied when the cluster's time passes its end, so a core that reads
  // the destination before waiting sees the old bytes.
  struct Transfer {
    uint32_t id, src, dst, size, src_stride, dst_stride, reps;
    uint64_t done;
  };
  // In one struct so that Reset cannot miss a register.
  struct DmaEngine {
    uint32_t src = 0, dst = 0, src_stride = 0, dst_stride = 0, reps = 1;
    uint32_t next_id = 2, completed_id = 1;  // iDMA's reset values.
    uint64_t free = 0;                       // When the engine is idle.
    std::deque<Transfer> queue;
    DmaCounters counters;
  };
  DmaEngine dma_;
  std::string out_;
  std::string error_;
};

}  // namespace joule::iss

#endif  // JOULE_DEVICE_RISCV_SIM_ISS_CLUSTER_H_
