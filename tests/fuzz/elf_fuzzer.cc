// RISC-V ELF files from outside (the ISS loads kernels and test programs):
// the parser on any bytes, and, for files it accepts that load at most
// 8 MiB, the program itself for 20000 instructions, so the decoder and the
// hart's loads, stores, CSR and FP paths see arbitrary instruction words.
#include <cstdint>

#include "absl/types/span.h"
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
  return 0;
}
