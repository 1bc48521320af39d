#include "server/model_paths.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace joule::server {
namespace {

bool Exists(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

// GGUF files carry their tokenizer. The magic, not the name, decides.
bool IsGguf(const std::string& path) {
  unsigned char magic[4] = {0, 0, 0, 0};
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  const size_t n = std::fread(magic, 1, 4, f);
  std::fclose(f);
  return n == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

std::vector<std::string> ModelDirs(const std::string& argv0) {
  std::vector<std::string> dirs;
  if (const char* d = std::getenv("JOULE_MODELS_DIR")) dirs.push_back(d);
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    dirs.push_back(absl::StrCat(ws, "/../shared/models"));
  }
  dirs.push_back("../shared/models");
  dirs.push_back(absl::StrCat(argv0, ".runfiles/shared_models"));
  if (const char* rf = std::getenv("RUNFILES_DIR")) {
    dirs.push_back(absl::StrCat(rf, "/shared_models"));
  }
  return dirs;
}

absl::StatusOr<std::string> FindBundled(const std::string& name,
                                        const std::string& argv0,
                                        const std::string& flag) {
  std::vector<std::string> tried;
  for (const std::string& dir : ModelDirs(argv0)) {
    std::string path = absl::StrCat(dir, "/", name);
    if (Exists(path)) return path;
    tried.push_back(path);
  }
  return absl::NotFoundError(absl::StrCat(
      "cannot find ", name, " (looked in ", absl::StrJoin(tried, ", "),
      "); pass ", flag, " or set JOULE_MODELS_DIR"));
}

}  // namespace

absl::StatusOr<ModelFiles> ResolveModelFiles(const std::string& model_flag,
                                             const std::string& tokenizer_flag,
                                             const std::string& argv0) {
  ModelFiles files;
  if (model_flag.empty()) {
    auto ckpt = FindBundled("stories260K.bin", argv0, "--model");
    if (!ckpt.ok()) return ckpt.status();
    files.checkpoint = *ckpt;
    if (tokenizer_flag.empty()) {
      auto tok = FindBundled("tok512.bin", argv0, "--tokenizer");
      if (!tok.ok()) return tok.status();
      files.tokenizer = *tok;
    }
  } else {
    files.checkpoint = model_flag;
    if (tokenizer_flag.empty() && !IsGguf(model_flag)) {
      std::string dir = ".";
      if (size_t slash = model_flag.rfind('/'); slash != std::string::npos) {
        dir = model_flag.substr(0, slash);
      }
      std::string beside = absl::StrCat(dir, "/tokenizer.bin");
      if (Exists(beside)) {
        files.tokenizer = beside;
      } else {
        auto tok = FindBundled("tokenizer.bin", argv0, "--tokenizer");
        if (!tok.ok()) return tok.status();
        files.tokenizer = *tok;
      }
    }
  }
  if (!tokenizer_flag.empty()) files.tokenizer = tokenizer_flag;
  return files;
}

}  // namespace joule::server
