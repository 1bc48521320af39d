#include "device/riscv/sim/iss/memory.h"

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
  regions_.push_back(std::move(r));
  return absl::OkStatus();
}

}  // namespace joule::iss
