#ifndef JOULE_DEVICE_RISCV_SIM_ISS_CLUSTER_CONFIG_H_
#define JOULE_DEVICE_RISCV_SIM_ISS_CLUSTER_CONFIG_H_

#include <cstdint>

namespace joule::iss {

// One Snitch cluster as the ISS models it. Every default says where it
// comes from (docs/riscv_iss_sources.md has the full citations); values
// marked "assumed" have no published source and are this model's choice.
struct ClusterConfig {
  // snitch_cluster cfg/default.json: 9 cores, cores 0-7 compute (Xssr,
  // Xfrep, Xfvec), core 8 the data mover (Xdma).
  int compute_cores = 8;
  int dm_cores = 1;
  // cfg/default.json: TCDM 128 KiB in 32 banks of 64 bits, word-
  // interleaved (bank = offset / 8 mod 32), at cluster_base_addr.
  uint32_t tcdm_base = 0x10000000u;
  uint32_t tcdm_bytes = 128u << 10;
  int tcdm_banks = 32;
  // The DRAM ("L3") region of the memory map (snitch_cluster
  // external_addr_regions starts at 0x8000_0000); this model maps
  // `dram_bytes` of it.
  uint32_t dram_base = 0x80000000u;
  uint32_t dram_bytes = 64u << 20;
  // Load-use latency in cycles beyond the issue cycle: Banshee's
  // config/snitch_cluster.yaml gives TCDM latency 1 and DRAM latency 4.
  int tcdm_latency = 1;
  int dram_latency = 4;
  // FPnew pipeline registers from cfg/default.json: lat_comp_fp64 3,
  // lat_comp_fp32 2, lat_noncomp 1, lat_conv 2, lat_sdotp 3. A result is
  // usable that many cycles after issue (at least 1).
  int lat_fp64 = 3;
  int lat_fp32 = 2;
  int lat_noncomp = 1;
  int lat_conv = 2;
  int lat_sdotp = 3;
  // Assumed: iterative division/square root in FPnew's DIVSQRT unit and
  // the integer core's shared multiplier and divider.
  int lat_fdiv64 = 21;
  int lat_fdiv32 = 11;
  int lat_mul = 3;
  int lat_div = 33;
  // Assumed: extra cycles after a taken branch or a jump (the integer
  // core refetches; Snitch predicts nothing).
  int branch_penalty = 1;
  // The DMA: cfg/default.json's dma_data_width 512 bits moves 64 bytes a
  // cycle within the cluster. Its DRAM side is Occamy's HBM, shared by
  // every cluster: assumed 16 bytes a cycle for this one and 100 cycles
  // of latency (no figure was found; docs/riscv_iss_sources.md "Gaps").
  int dma_bytes_per_cycle = 64;
  int hbm_bytes_per_cycle = 16;
  int hbm_latency = 100;
  // cfg/default.json: num_sequencer_instructions 32 (the FREP buffer).
  int frep_buffer = 32;
  // Assumed: cycles from the last hart's arrival at the hardware barrier
  // to every hart's release.
  int barrier_latency = 2;
  // Assumed: how far (cycles) one hart may run ahead of the slowest
  // before the scheduler switches; bank conflicts between harts are
  // judged within this window.
  int quantum = 16;
};

}  // namespace joule::iss

#endif  // JOULE_DEVICE_RISCV_SIM_ISS_CLUSTER_CONFIG_H_
