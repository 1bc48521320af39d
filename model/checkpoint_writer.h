#ifndef JOULE_MODEL_CHECKPOINT_WRITER_H_
#define JOULE_MODEL_CHECKPOINT_WRITER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model/config.h"

namespace joule::model {

enum class Tensor {
  kTokenEmbedding,  // [vocab_size x dim]
  kRmsAtt,          // per layer [dim]
  kWq,              // per layer [dim x dim]
  kWk,              // per layer [kv_dim x dim]
  kWv,              // per layer [kv_dim x dim]
  kWo,              // per layer [dim x dim]
  kRmsFfn,          // per layer [dim]
  kW1,              // per layer [hidden_dim x dim]
  kW2,              // per layer [dim x hidden_dim]
  kW3,              // per layer [hidden_dim x dim]
  kRmsFinal,        // [dim]
  kClassifier,      // [vocab_size x dim], only when not shared
};

int64_t TensorSize(const Config& config, Tensor tensor);

// Supplies a tensor's fp32 values; `out` is already sized by TensorSize.
// `layer` is 0 for tensors that are not per layer.
using TensorSource =
    std::function<void(Tensor tensor, int layer, std::vector<float>* out)>;

// Writes a llama2.c checkpoint of `version` 0 (fp32, legacy) or 2 (Q8_0 with
// `group_size`), replacing `path` atomically.
absl::Status WriteCheckpoint(const std::string& path, const Config& config,
                             int version, int group_size,
                             const TensorSource& source);

}  // namespace joule::model

#endif  // JOULE_MODEL_CHECKPOINT_WRITER_H_
