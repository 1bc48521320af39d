#ifndef JOULE_DEVICE_RISCV_SIM_ISS_ENERGY_H_
#define JOULE_DEVICE_RISCV_SIM_ISS_ENERGY_H_

#include <string>

#include "device/riscv/sim/iss/cluster.h"

namespace joule::iss {

// What a cluster run did that costs energy, summed over its cores.
struct EnergyEvents {
  double cycles = 0;        // The run's length (for the static share).
  double instructions = 0;  // Fetched and retired by the integer cores.
  double fpu_issues = 0;    // FP pipeline operations (FREP repeats too).
  double flops_fp64 = 0;
  double flops_fp32 = 0;
  double tcdm_accesses = 0;  // 64-bit bank accesses by the cores.
  double dram_accesses = 0;  // Core loads and stores that leave the cluster.
  double dma_bytes = 0;      // Moved by the cluster's DMA.
  // Bytes to or from DRAM/HBM: the DMA's, and 8 per core DRAM access.
  double hbm_bytes = 0;

  EnergyEvents& operator+=(const EnergyEvents& o);
};
EnergyEvents CountEvents(const ClusterRun& run);

// Energy = counted events x per-event energies, calibrated once.
//
// The per-event energies are relative: picojoules at 45 nm from
// Horowitz, "Computing's energy problem" (ISSCC 2014), where that table
// has the operation, and assumed otherwise (marked). One factor,
// `scale`, turns them into this chip's joules; it is fitted once so that
// one Occamy compute die (24 clusters) running the optimized fp64 GEMM at
// 64 x 64 x 64 on every cluster draws 10 W at 1 GHz: "a single Occamy die
// consumes 10 W at 1000 MHz" (docs/riscv_iss_sources.md, "Added
// 2026-12-07"). A share of that power, assumed, is static and clock power
// drawn every cycle by every cluster, busy or not. Everything else the
// model reports (GFLOPS/W of other kernels, J/token) is a prediction.
// HBM's energy is outside the die's 10 W: a separate per-byte figure.
struct EnergyModel {
  // Relative energies, pJ at 45 nm.
  double pj_flop_fp32 = 2.3;  // Horowitz: fp32 add 0.9 + mult 3.7, per FMA's 2.
  // Assumed: a binary64 multiplier costs ~(53/24)^2 = 4.9x binary32's;
  // rounded down to 4x for the shared adder and pipeline.
  double pj_flop_fp64 = 9.2;
  double pj_instruction = 2.0;   // Assumed: fetch, decode, register file.
  double pj_fpu_issue = 1.0;     // Assumed: FP register file and issue.
  double pj_tcdm_access = 10.0;  // Horowitz: 64-bit read of an 8 KB SRAM.
  // Assumed: the DMA writes the TCDM 64 bits at a time (one access per 8
  // bytes) and a core's DRAM access crosses the same interconnect.
  double pj_dma_byte = 10.0 / 8;
  double pj_dram_access = 10.0;

  // Fitted (Calibrate): joules per relative pJ, and the static and clock
  // energy per cluster per cycle.
  double joules_per_pj = 0;
  double cluster_cycle_joules = 0;
  // Assumed, as in the tile model's sim_config.cc: 30 pJ per HBM byte.
  double hbm_byte_joules = 30e-12;

  // The events' relative energy (pJ at 45 nm) and their joules on this
  // chip, without the static share or HBM.
  double RelativePj(const EnergyEvents& e) const;
  double DynamicJoules(const EnergyEvents& e) const {
    return RelativePj(e) * joules_per_pj;
  }
  // A launch that kept `clusters_powered` clusters on for `cycles`.
  double Joules(const EnergyEvents& dynamic, double cycles,
                int clusters_powered) const {
    return DynamicJoules(dynamic) + dynamic.hbm_bytes * hbm_byte_joules +
           cluster_cycle_joules * cycles * clusters_powered;
  }
};

// The calibration's published figure and assumption.
struct Calibration {
  double die_watts = 10.0;  // One Occamy compute die at 1 GHz.
  int clusters = 24;        // Its clusters (6 groups of 4).
  double frequency_hz = 1e9;
  double static_share = 0.25;  // Assumed share of static and clock power.
};

// Fits `joules_per_pj` and `cluster_cycle_joules` of `model` to the
// reference run (one cluster's optimized fp64 GEMM, 64^3).
EnergyModel Calibrate(EnergyModel model, const ClusterRun& reference,
                      const Calibration& calibration = {});

// The committed calibration (written by `iss_report --calibrate`; the
// test iss_kernels_test re-fits it and fails if the ISS has drifted).
EnergyModel CalibratedEnergyModel();

}  // namespace joule::iss

#endif  // JOULE_DEVICE_RISCV_SIM_ISS_ENERGY_H_
