#include "device/runfiles.h"

#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"

namespace joule::device {

std::string FindRunfile(const std::string& path, const std::string& argv0) {
  std::vector<std::string> roots;
  if (const char* rf = std::getenv("RUNFILES_DIR")) roots.push_back(rf);
  roots.push_back(argv0 + ".runfiles");
  // A binary started from another's runfiles tree (the simulator the
  // server starts) finds its files in that tree.
  if (size_t at = argv0.rfind(".runfiles/"); at != std::string::npos)
    roots.push_back(argv0.substr(0, at + 9));
  for (const std::string& root : roots) {
    std::string p = absl::StrCat(root, "/joule/", path);
    if (access(p.c_str(), R_OK) == 0) return p;
  }
  return "";
}

}  // namespace joule::device
