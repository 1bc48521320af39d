#ifndef JOULE_TESTS_TEST_PATHS_H_
#define JOULE_TESTS_TEST_PATHS_H_

#include <cstdlib>
#include <string>

namespace joule::testing {

// A file of ../shared/models, through the @shared_models runfiles.
inline std::string SharedModel(const std::string& name) {
  const char* root = std::getenv("TEST_SRCDIR");
  return std::string(root ? root : ".") + "/shared_models/" + name;
}

// A file of this workspace's runfiles: a built binary or a data file,
// named by its path in the tree ("server/joule_server").
inline std::string Runfile(const std::string& path) {
  const char* root = std::getenv("TEST_SRCDIR");
  return std::string(root ? root : ".") + "/joule/" + path;
}

// A scratch directory that Bazel cleans up.
inline std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

}  // namespace joule::testing

#endif  // JOULE_TESTS_TEST_PATHS_H_
