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
  for (const std::string& root : roots) {
    std::string p = absl::StrCat(root, "/joule/", path);
    if (access(p.c_str(), R_OK) == 0) return p;
  }
  return "";
}

}  // namespace joule::device
