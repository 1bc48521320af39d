#include "model/convert.h"

#include <cstring>

#include "model/quantize.h"

namespace joule::model {

TensorSource CheckpointWeights(const Checkpoint& ckpt) {
  return [&ckpt](Tensor t, int layer, std::vector<float>* out) {
    const int dim = ckpt.config().dim;
    auto copy_norm = [&](const float* p) {
      std::memcpy(out->data(), p, sizeof(float) * dim);
    };
    auto copy_matrix = [&](const Matrix& m) {
      for (int r = 0; r < m.rows; ++r) {
        m.DequantizeRow(r, out->data() + int64_t{r} * m.cols);
      }
    };
    const LayerWeights& lw = ckpt.layer(layer);
    switch (t) {
      case Tensor::kTokenEmbedding:
        return copy_matrix(ckpt.token_embedding());
      case Tensor::kClassifier:
        return copy_matrix(ckpt.classifier());
      case Tensor::kRmsAtt:
        return copy_norm(lw.rms_att);
      case Tensor::kRmsFfn:
        return copy_norm(lw.rms_ffn);
      case Tensor::kRmsFinal:
        return copy_norm(ckpt.rms_final());
      case Tensor::kWq:
        return copy_matrix(lw.wq);
      case Tensor::kWk:
        return copy_matrix(lw.wk);
      case Tensor::kWv:
        return copy_matrix(lw.wv);
      case Tensor::kWo:
        return copy_matrix(lw.wo);
      case Tensor::kW1:
        return copy_matrix(lw.w1);
      case Tensor::kW2:
        return copy_matrix(lw.w2);
      case Tensor::kW3:
        return copy_matrix(lw.w3);
    }
  };
}

absl::Status ConvertCheckpoint(const Checkpoint& input,
                               const std::string& output, int version,
                               int group_size) {
  if (group_size == 0) group_size = ChooseGroupSize(input.config());
  return WriteCheckpoint(output, input.config(), version, group_size,
                         CheckpointWeights(input));
}

}  // namespace joule::model
