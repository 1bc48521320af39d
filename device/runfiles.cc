#include "device/runfiles.h"

#include <limits.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"

namespace joule::device {
namespace {

// `argv0` as an absolute path (a relative one is relative to the working
// directory: `bazel run` starts binaries inside their runfiles tree).
std::string Absolute(const std::string& argv0) {
  if (argv0.empty() || argv0[0] == '/') return argv0;
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return argv0;
  return absl::StrCat(cwd, "/", argv0);
}

}  // namespace

std::string FindRunfile(const std::string& path, const std::string& argv0) {
  std::vector<std::string> roots;
  if (const char* rf = std::getenv("RUNFILES_DIR")) roots.push_back(rf);
  roots.push_back(argv0 + ".runfiles");
  // A binary started from another's runfiles tree (the simulator the
  // server starts) finds its files in that tree.
  const std::string abs = Absolute(argv0);
  if (size_t at = abs.rfind(".runfiles/"); at != std::string::npos)
    roots.push_back(abs.substr(0, at + 9));
  // Or beside the real binary, wherever it was reached from.
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) roots.push_back(absl::StrCat(std::string(exe, n), ".runfiles"));
  for (const std::string& root : roots) {
    std::string p = absl::StrCat(root, "/joule/", path);
    if (access(p.c_str(), R_OK) == 0) return p;
  }
  return "";
}

}  // namespace joule::device
