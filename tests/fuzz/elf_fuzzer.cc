// RISC-V ELF files from outside (the ISS loads kernels and test programs):
// the parser on any bytes, and, for files it accepts that load at most
// 8 MiB, the program itself for 20000 instructions on one hart and for
// 20000 cycles on a Snitch cluster, so the decoder, the harts' loads,
// stores, CSR and FP paths, and the SSR, FREP and DMA models see
// arbitrary instruction words.
#include <cstdint>

#include "absl/types/span.h"
#include "device/riscv/sim/iss/cluster.h"
#include "device/riscv/sim/iss/elf.h"
#include "device/riscv/sim/iss/user_env.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::Span<const uint8_t> bytes(data, size);
  auto image = joule::iss::ParseElf(bytes);
  if (!image.ok()) return 0;
  uint64_t loaded = 0;
  for (const auto& s : image->segments) loaded += s.memsz;
  if (loaded > (uint64_t{8} << 20)) return 0;
  auto run = joule::iss::RunUserProgram(bytes, 20000);
  (void)run;
  joule::iss::ClusterConfig small;
  small.dram_bytes = 4u << 20;  // Fuzzed programs are small; runs are many.
  joule::iss::Cluster cluster(small);
  if (cluster.Load(bytes).ok()) (void)cluster.Run(20000);
  return 0;
}
