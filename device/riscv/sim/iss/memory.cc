#include "device/riscv/sim/iss/memory.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace joule::iss {

absl::Status Memory::Map(uint32_t base, uint32_t size, std::string name) {
  const uint64_t end = uint64_t{base} + size;
  if (size == 0 || end > (uint64_t{1} << 32)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "region %s [0x%08x, +0x%x) is empty or wraps past 4 GiB", name, base,
        size));
  }
  for (const Region& r : regions_) {
    if (base < uint64_t{r.base} + r.size && r.base < end) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "region %s [0x%08x, +0x%x) overlaps %s", name, base, size, r.name));
    }
  }
  Region r;
  r.base = base;
  r.size = size;
  r.bytes.reset(static_cast<uint8_t*>(std::calloc(size, 1)));
  if (r.bytes == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot allocate %u bytes for %s", size, name));
  }
  r.name = std::move(name);
  r.written.assign((uint64_t{size} + (1u << kPageBits) - 1) >> kPageBits, 0);
  regions_.push_back(std::move(r));
  return absl::OkStatus();
}

void Memory::ZeroWritten() {
  for (Region& r : regions_) r.ZeroWritten();
}

// memchr, not a loop over the flags: most of 16384 DRAM pages are clean,
// and scanning them would otherwise cost more than zeroing the few dirty.
void Memory::Region::ZeroWritten() {
  uint8_t* const flags = written.data();
  const size_t pages = written.size();
  size_t first = 0;
  while (const void* hit = std::memchr(flags + first, 1, pages - first)) {
    first = static_cast<const uint8_t*>(hit) - flags;
    const void* clean = std::memchr(flags + first, 0, pages - first);
    const size_t last =
        clean ? static_cast<const uint8_t*>(clean) - flags : pages;
    const uint64_t from = uint64_t{first} << kPageBits;
    const uint64_t to = std::min<uint64_t>(uint64_t{last} << kPageBits, size);
    std::memset(bytes.get() + from, 0, to - from);
    std::memset(flags + first, 0, last - first);
    first = last;
  }
}

}  // namespace joule::iss
