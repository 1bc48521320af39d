#ifndef JOULE_DEVICE_RISCV_SIM_TOKEN_H_
#define JOULE_DEVICE_RISCV_SIM_TOKEN_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "device/riscv/sim/protocol.h"

// The shared secret a bridge client presents in HELLO (protocol.md). The
// daemon and the server read it from the same file; a server that starts
// its own daemon makes a fresh one for it.
namespace joule::riscv {

// The file's contents without trailing whitespace (`echo` adds a newline).
// Errors name the path: unreadable, empty, or over kMaxTokenBytes.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// 32 bytes from the kernel's CSPRNG (getrandom), as 64 hex digits.
absl::StatusOr<std::string> NewToken();

// Creates `path` (it must not exist) with mode 0600 and writes `token`.
absl::Status WriteTokenFile(const std::string& path, absl::string_view token);

// Whether `presented` equals `expected`, in time that depends only on
// `expected`'s length: an early exit at the first differing byte would let
// a client find the token a byte at a time by timing refusals.
bool TokenMatches(absl::string_view expected, absl::string_view presented);

}  // namespace joule::riscv

#endif  // JOULE_DEVICE_RISCV_SIM_TOKEN_H_
