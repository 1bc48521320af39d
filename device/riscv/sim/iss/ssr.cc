#include "device/riscv/sim/iss/ssr.h"

namespace joule::iss {

void Ssr::WriteConfig(uint32_t word, uint32_t value) {
  if (word == 1) {
    repeat_ = value;
  } else if (word >= 2 && word <= 5) {
    bound_[word - 2] = value;
  } else if (word >= 6 && word <= 9) {
    stride_[word - 6] = value & ~7u;  // 64-bit word aligned.
  } else if (word >= 24 && word <= 31) {
    Start(value, word >= 28, static_cast<int>(word & 3) + 1);
  }
  // Status (0), indirection (10-12, 16-23) and unused words: not modeled;
  // writes to them are ignored.
}

uint32_t Ssr::ReadConfig(uint32_t word) const {
  if (word == 0) {
    return (job_.ptr & 0x07ffffffu) | (!job_.active ? 1u << 31 : 0) |
           (job_.write ? 1u << 30 : 0) |
           (static_cast<uint32_t>(job_.dims - 1) << 28);
  }
  if (word == 1) return repeat_;
  if (word >= 2 && word <= 5) return bound_[word - 2];
  if (word >= 6 && word <= 9) return stride_[word - 6];
  return 0;
}

void Ssr::Start(uint32_t ptr, bool write, int dims) {
  Job j;
  j.active = true;
  j.write = write;
  j.dims = dims;
  j.ptr = ptr;
  j.repeat = write ? 0 : repeat_;
  for (int i = 0; i < 4; ++i) {
    j.bound[i] = bound_[i];
    j.stride[i] = stride_[i];
  }
  if (job_.active) {
    pending_ = j;
  } else {
    job_ = j;
  }
}

bool Ssr::Advance() {
  if (!job_.active) return false;
  if (job_.rep < job_.repeat) {
    ++job_.rep;
    return true;
  }
  job_.rep = 0;
  for (int i = 0; i < job_.dims; ++i) {
    if (job_.count[i] < job_.bound[i]) {
      ++job_.count[i];
      for (int k = 0; k < i; ++k) job_.count[k] = 0;
      job_.ptr += job_.stride[i];
      return true;
    }
  }
  // Every loop at its bound: the job is done; a queued one starts.
  job_ = pending_;
  pending_ = Job();
  return true;
}

}  // namespace joule::iss
