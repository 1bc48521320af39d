#ifndef JOULE_SERVER_MODEL_PATHS_H_
#define JOULE_SERVER_MODEL_PATHS_H_

#include <string>

#include "absl/status/statusor.h"

namespace joule::server {

struct ModelFiles {
  std::string checkpoint;
  std::string tokenizer;
};

// Fills in what the flags leave empty. No --model: the bundled stories260K
// with tok512, from $JOULE_MODELS_DIR, ../shared/models beside the checkout
// (also when started by `bazel run`), or the binary's runfiles. A --model
// without --tokenizer: none for a GGUF file (its own is used), else
// tokenizer.bin beside the checkpoint, else the bundled Llama 2
// tokenizer.bin. Errors say which flag to pass.
absl::StatusOr<ModelFiles> ResolveModelFiles(const std::string& model_flag,
                                             const std::string& tokenizer_flag,
                                             const std::string& argv0);

}  // namespace joule::server

#endif  // JOULE_SERVER_MODEL_PATHS_H_
