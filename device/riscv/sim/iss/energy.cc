#include "device/riscv/sim/iss/energy.h"

namespace joule::iss {
namespace {

// Fitted by `bazel run -c opt //device/riscv/sim:iss_report -- --calibrate`
// (docs/riscv_iss.md, "Energy", names the ISS commit it ran at).
constexpr double kCalibratedJoulesPerPj = 1.113478e-12;

}  // namespace

EnergyEvents& EnergyEvents::operator+=(const EnergyEvents& o) {
  cycles += o.cycles;
  instructions += o.instructions;
  fpu_issues += o.fpu_issues;
  flops_fp64 += o.flops_fp64;
  flops_fp32 += o.flops_fp32;
  tcdm_accesses += o.tcdm_accesses;
  dram_accesses += o.dram_accesses;
  dma_bytes += o.dma_bytes;
  hbm_bytes += o.hbm_bytes;
  return *this;
}

EnergyEvents CountEvents(const ClusterRun& run) {
  EnergyEvents e;
  e.cycles = run.cycles;
  for (const CoreCounters& c : run.cores) {
    e.instructions += c.instructions;
    e.fpu_issues += c.fpu_issues;
    e.flops_fp64 += c.flops_fp64;
    e.flops_fp32 += c.flops_fp32;
    e.tcdm_accesses += c.tcdm_accesses;
    e.dram_accesses += c.dram_accesses;
  }
  e.dma_bytes = run.dma.bytes;
  // A core's load or store outside the cluster moves one 64-bit beat to or
  // from HBM (the counters do not keep its width).
  e.hbm_bytes = run.dma.dram_bytes + 8 * e.dram_accesses;
  return e;
}

double EnergyModel::RelativePj(const EnergyEvents& e) const {
  return e.flops_fp32 * pj_flop_fp32 + e.flops_fp64 * pj_flop_fp64 +
         e.instructions * pj_instruction + e.fpu_issues * pj_fpu_issue +
         e.tcdm_accesses * pj_tcdm_access + e.dma_bytes * pj_dma_byte +
         e.dram_accesses * pj_dram_access;
}

EnergyModel Calibrate(EnergyModel model, const ClusterRun& reference,
                      const Calibration& k) {
  const double cluster_watts = k.die_watts / k.clusters;
  model.cluster_cycle_joules = k.static_share * cluster_watts / k.frequency_hz;
  const EnergyEvents e = CountEvents(reference);
  const double dynamic_joules =
      (1 - k.static_share) * cluster_watts / k.frequency_hz * e.cycles;
  model.joules_per_pj = dynamic_joules / model.RelativePj(e);
  return model;
}

EnergyModel CalibratedEnergyModel() {
  EnergyModel m;
  m.joules_per_pj = kCalibratedJoulesPerPj;
  m.cluster_cycle_joules = 0.25 * 10.0 / 24 / 1e9;
  return m;
}

}  // namespace joule::iss
