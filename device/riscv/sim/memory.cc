#include "device/riscv/sim/memory.h"

#include <sys/mman.h>

#include <cstring>

#include "absl/strings/str_format.h"

namespace joule::riscv {

absl::Status CheckedRange(absl::string_view what, uint64_t off, uint64_t count,
                          uint64_t elem_size, uint64_t limit) {
  uint64_t bytes = 0, end = 0;
  if (__builtin_mul_overflow(count, elem_size, &bytes) ||
      __builtin_add_overflow(off, bytes, &end)) {
    return absl::OutOfRangeError(
        absl::StrFormat("%s: %d x %d bytes at 0x%x overflows 64 bits", what,
                        count, elem_size, off));
  }
  if (off > limit || end > limit) {
    return absl::OutOfRangeError(absl::StrFormat(
        "%s: %d bytes at 0x%x lie outside simulated HBM (%d bytes)", what,
        bytes, off, limit));
  }
  return absl::OkStatus();
}

absl::StatusOr<Memory> Memory::Create(int64_t bytes) {
  if (bytes <= 0)
    return absl::InvalidArgumentError("HBM size must be positive");
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot reserve %d bytes of simulated HBM", bytes));
  }
  return Memory(static_cast<unsigned char*>(p), bytes);
}

Memory& Memory::operator=(Memory&& o) noexcept {
  if (this != &o) {
    if (base_ != nullptr) munmap(base_, size_);
    base_ = o.base_;
    size_ = o.size_;
    o.base_ = nullptr;
  }
  return *this;
}

Memory::~Memory() {
  if (base_ != nullptr) munmap(base_, size_);
}

absl::Status Memory::Check(uint64_t addr, uint64_t bytes) const {
  return CheckedRange("access", addr, bytes, 1, size_);
}

absl::Status Memory::CheckArray(absl::string_view what, uint64_t addr,
                                uint64_t count, uint64_t elem_size,
                                uint64_t align) const {
  if (align > 1 && addr % align != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: address 0x%x is not %d-byte aligned", what, addr, align));
  }
  return CheckedRange(what, addr, count, elem_size, size_);
}

absl::Status Memory::Write(uint64_t addr, const void* data, uint64_t bytes) {
  if (absl::Status s = Check(addr, bytes); !s.ok()) return s;
  std::memcpy(base_ + addr, data, bytes);
  return absl::OkStatus();
}

absl::Status Memory::Read(uint64_t addr, void* data, uint64_t bytes) const {
  if (absl::Status s = Check(addr, bytes); !s.ok()) return s;
  std::memcpy(data, base_ + addr, bytes);
  return absl::OkStatus();
}

void Memory::Clear() { madvise(base_, size_, MADV_DONTNEED); }

}  // namespace joule::riscv
