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
  // them all. The caller may write them: their pages count as written
  // (ZeroWritten).
  uint8_t* At(uint32_t addr, uint32_t n) {
    const int i = Find(addr, n);
    if (i < 0) return nullptr;
    Region& r = regions_[i];
    const uint32_t off = addr - r.base;
    r.Touch(off, n);
    return r.bytes.get() + off;
  }
  // The same bytes, to read only (not counted as written).
  const uint8_t* Read(uint32_t addr, uint32_t n) const {
    const int i = Find(addr, n);
    if (i < 0) return nullptr;
    return regions_[i].bytes.get() + (addr - regions_[i].base);
  }

  template <typename T>
  bool Load(uint32_t addr, T* v) const {
    const uint8_t* p = Read(addr, sizeof(T));
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

  // Zeroes every page written since Map or the last call, so the regions
  // read as freshly mapped: cheaper than mapping them again, whose pages
  // each fault in anew, and than zeroing 64 MiB of DRAM that a launch
  // mostly never touched.
  void ZeroWritten();

 private:
  static constexpr int kPageBits = 12;
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
    // Per page, whether it may hold a non-zero byte.
    std::vector<uint8_t> written;

    void Touch(uint32_t off, uint32_t n) {
      if (n == 0) return;
      const uint32_t last = (off + n - 1) >> kPageBits;
      for (uint32_t p = off >> kPageBits; p <= last; ++p) written[p] = 1;
    }
    void ZeroWritten();
  };

  // The region holding all of [addr, addr + n), or -1.
  int Find(uint32_t addr, uint32_t n) const {
    for (size_t i = 0; i < regions_.size(); ++i) {
      const Region& r = regions_[i];
      const uint32_t off = addr - r.base;  // Wraps when addr < base.
      if (off < r.size && n <= r.size - off) return static_cast<int>(i);
    }
    return -1;
  }

  std::vector<Region> regions_;
};

}  // namespace joule::iss

#endif  // JOULE_DEVICE_RISCV_SIM_ISS_MEMORY_H_
