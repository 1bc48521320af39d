#ifndef JOULE_DEVICE_RISCV_SIM_ISS_ELF_H_
#define JOULE_DEVICE_RISCV_SIM_ISS_ELF_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "device/riscv/sim/iss/memory.h"

namespace joule::iss {

// A RISC-V ELF32 executable: what the loader needs of it.
struct ElfImage {
  struct Segment {
    uint32_t vaddr = 0;
    uint32_t memsz = 0;
    std::vector<uint8_t> bytes;  // The file's part (filesz <= memsz).
    bool executable = false;
  };
  uint32_t entry = 0;
  std::vector<Segment> segments;
  // Defined symbols by name (functions and objects), for finding a
  // kernel's entry points and buffers.
  absl::flat_hash_map<std::string, uint32_t> symbols;
};

// Parses an ELF32 little-endian RISC-V executable. The file is untrusted:
// every offset, count and size is checked against it (64-bit sums), and
// sizes are capped (at most 64 program headers, 256 MiB loaded, 2^16
// symbols), so a hostile file gets an error naming what is wrong, never
// an out-of-bounds read or an outsized allocation.
absl::StatusOr<ElfImage> ParseElf(absl::Span<const uint8_t> file);

// Maps each segment into `mem` (its own region, exactly its addresses)
// and copies its bytes.
absl::Status LoadElf(const ElfImage& image, Memory* mem);

}  // namespace joule::iss

#endif  // JOULE_DEVICE_RISCV_SIM_ISS_ELF_H_
