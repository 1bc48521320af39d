#ifndef JOULE_DEVICE_RISCV_SIM_ISS_USER_ENV_H_
#define JOULE_DEVICE_RISCV_SIM_ISS_USER_ENV_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "device/riscv/sim/iss/hart.h"
#include "device/riscv/sim/iss/memory.h"

namespace joule::iss {

// The two Linux system calls a freestanding test program needs, with
// qemu-riscv32's (user mode) numbers and results: write (64) to fd 1 or 2
// appends to `out`, exit (93) and exit_group (94) stop the hart; any other
// call returns -ENOSYS. So one ELF runs unchanged on the ISS and on qemu,
// and their outputs can be compared byte for byte.
class UserEnv : public Environment {
 public:
  static constexpr size_t kMaxOutput = size_t{16} << 20;
  bool Ecall(Hart& hart, Stop* stop) override;
  std::string out;
};

// A program run as qemu-riscv32 runs it: segments loaded, a 1 MiB stack
// below 0x7ff00000 (sp 16-byte aligned), pc at the entry point.
struct UserRun {
  Stop stop;
  std::string out;
  uint64_t instructions = 0;
  double seconds = 0;
};
absl::StatusOr<UserRun> RunUserProgram(absl::Span<const uint8_t> elf,
                                       uint64_t budget);

}  // namespace joule::iss

#endif  // JOULE_DEVICE_RISCV_SIM_ISS_USER_ENV_H_
