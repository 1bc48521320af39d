#ifndef JOULE_MODEL_GGUF_EXPORT_H_
#define JOULE_MODEL_GGUF_EXPORT_H_

#include <string>

#include "absl/status/status.h"
#include "model/checkpoint.h"
#include "model/gguf.h"
#include "model/tokenizer.h"

namespace joule::model {

// Writes a checkpoint and its tokenizer as a llama GGUF file that
// llama.cpp reads: weight matrices in `type` (F32, F16, BF16, Q8_0 or
// Q4_0; every row a whole number of 32-value blocks for the last two),
// norms in F32, the vocabulary as tokenizer.ggml.* with spaces as U+2581.
absl::Status ExportGguf(const Checkpoint& ckpt, const Tokenizer& tokenizer,
                        gguf::TensorType type, const std::string& name,
                        const std::string& path);

}  // namespace joule::model

#endif  // JOULE_MODEL_GGUF_EXPORT_H_
