#ifndef JOULE_DEVICE_RISCV_SIM_MEMORY_H_
#define JOULE_DEVICE_RISCV_SIM_MEMORY_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace joule::riscv {

// OK if the `count` elements of `elem_size` bytes at byte offset `off` lie
// inside [0, limit). The size and the end are computed with overflow checks:
// client-supplied values near 2^64 would otherwise wrap into a short range
// that passes a naive `off + size <= limit` test. The error (OUT_OF_RANGE)
// names the range as `what`.
absl::Status CheckedRange(absl::string_view what, uint64_t off, uint64_t count,
                          uint64_t elem_size, uint64_t limit);

// Simulated HBM: one address space of `bytes`, backed lazily (untouched
// pages cost no host memory), with every access bounds-checked.
class Memory {
 public:
  static absl::StatusOr<Memory> Create(int64_t bytes);
  Memory(Memory&& o) noexcept : base_(o.base_), size_(o.size_) {
    o.base_ = nullptr;
  }
  Memory& operator=(Memory&& o) noexcept;
  ~Memory();

  // OUT_OF_RANGE unless [addr, addr + bytes) lies inside.
  absl::Status Check(uint64_t addr, uint64_t bytes) const;
  // CheckedRange over this memory, and INVALID_ARGUMENT unless `addr` is a
  // multiple of `align`: kernels access tensors through typed pointers.
  absl::Status CheckArray(absl::string_view what, uint64_t addr, uint64_t count,
                          uint64_t elem_size, uint64_t align = 1) const;
  absl::Status Write(uint64_t addr, const void* data, uint64_t bytes);
  absl::Status Read(uint64_t addr, void* data, uint64_t bytes) const;
  // Direct access for kernels, after Check.
  unsigned char* at(uint64_t addr) { return base_ + addr; }
  float* f32(uint64_t addr) { return reinterpret_cast<float*>(base_ + addr); }
  // Returns every page to the host; contents read as zero again.
  void Clear();
  uint64_t size() const { return size_; }

 private:
  Memory(unsigned char* base, uint64_t size) : base_(base), size_(size) {}
  unsigned char* base_;
  uint64_t size_;
};

}  // namespace joule::riscv

#endif  // JOULE_DEVICE_RISCV_SIM_MEMORY_H_
