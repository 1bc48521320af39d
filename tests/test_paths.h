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

// A scratch directory that Bazel cleans up.
inline std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

}  // namespace joule::testing

#endif  // JOULE_TESTS_TEST_PATHS_H_
