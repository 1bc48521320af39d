#include "device/riscv/sim/memory.h"

#include <sys/mman.h>

#include <cstring>

#include "absl/strings/str_format.h"

namespace joule::riscv {

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
  if (addr > size_ || bytes > size_ - addr) {
    return absl::OutOfRangeError(absl::StrFormat(
        "access of %d bytes at 0x%x is outside simulated HBM (%d bytes)", bytes,
        addr, size_));
  }
  return absl::OkStatus();
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
