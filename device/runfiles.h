#ifndef JOULE_DEVICE_RUNFILES_H_
#define JOULE_DEVICE_RUNFILES_H_

#include <string>

namespace joule::device {

// A file or folder of this workspace that the build ships with the binary
// (its runfiles, e.g. "device/riscv/sim/riscv_simd"), or "" if it is not
// there. Looks under $RUNFILES_DIR, <argv0>.runfiles, the runfiles tree
// argv0 lies in, and the real executable's runfiles.
std::string FindRunfile(const std::string& path, const std::string& argv0);

}  // namespace joule::device

#endif  // JOULE_DEVICE_RUNFILES_H_
