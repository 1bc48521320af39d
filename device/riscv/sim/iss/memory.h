#ifndef JOULE_DEVICE_RISCV_SIM_ISS_MEMORY_H_
#define JOULE_DEVICE_RISCV_SIM_ISS_MEMORY_H_

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace joule::iss {

// The simulated physical address space: a few disjoint regions of host
// memory (a cluster's TCDM, DRAM, a program's segments and stack). An
// access must fall inside one region; anything else is an access fault.
class Memory {
 public:
  // Maps [base, base + size) filled with zeros. Fails if it would wrap
  // past 4 GiB or overlap a mapped region.
  absl::Status Map(uint32_t base, uint32_t size, std::string name);

  // Host bytes of [addr, addr + n), or nullptr unless one region holds
  // them all.
  uint8_t* At(uint32_t addr, uint32_t n) {
    for (Region& r : regions_) {
      const uint32_t off = addr - r.base;  // Wraps when addr < base.
      if (off < r.size && n <= r.size - off) return r.bytes.get() + off;
    }
    return nullptr;
  }

  template <typename T>
  bool Load(uint32_t addr, T* v) {
    const uint8_t* p = At(addr, sizeof(T));
    if (p == nullptr) return false;
    std::memcpy(v, p, sizeof(T));
    return true;
  }
  template <typename T>
  bool Store(uint32_t addr, T v) {
    uint8_t* p = At(addr, sizeof(T));
    if (p == nullptr) return false;
    std::memcpy(p, &v, sizeof(T));
    return true;
  }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  struct Region {
    uint32_t base = 0;
    uint32_t size = 0;
    // calloc: large regions come as untouched zero pages, so mapping
    // 64 MiB of DRAM costs nothing until it is written.
    std::unique_ptr<uint8_t[], Free> bytes;
    std::string name;
  };
  std::vector<Region> regions_;
};

}  // namespace joule::iss

#endif  // JOULE_DEVICE_RISCV_SIM_ISS_MEMORY_H_
