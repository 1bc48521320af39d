#include "device/fpga/packed_weights.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace joule::fpga {

absl::StatusOr<PackedWeights> PackWeights(const model::Checkpoint& ckpt) {
  if (ckpt.format() != model::WeightFormat::kQ8_0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the FPGA device runs int8 (Q8_0) weights, this model's are ",
        model::WeightFormatName(ckpt.format()),
        "; convert with bazel run //model:convert_tool -- --version=2, or "
        "export GGUF as q8_0"));
  }
  const model::Config& c = ckpt.config();
  if (!c.HasLlama2cConstants()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the FPGA kernel is built for RoPE base 10000 and RMS epsilon 1e-5; "
        "this model has %g and %g",
        c.rope_theta, c.norm_eps));
  }
  PackedWeights p;
  auto add = [&](const model::Matrix& m) {
    p.q8.insert(p.q8.end(), m.q, m.q + m.size());
    p.scales.insert(p.scales.end(), m.scales,
                    m.scales + m.size() / m.group_size);
  };
  add(ckpt.token_embedding());
  for (auto field : {&model::LayerWeights::wq, &model::LayerWeights::wk,
                     &model::LayerWeights::wv, &model::LayerWeights::wo,
                     &model::LayerWeights::w1, &model::LayerWeights::w2,
                     &model::LayerWeights::w3}) {
    for (int l = 0; l < c.n_layers; ++l) add(ckpt.layer(l).*field);
  }
  if (!c.shared_classifier) add(ckpt.classifier());
  for (int l = 0; l < c.n_layers; ++l) {
    p.norms.insert(p.norms.end(), ckpt.layer(l).rms_att,
                   ckpt.layer(l).rms_att + c.dim);
  }
  for (int l = 0; l < c.n_layers; ++l) {
    p.norms.insert(p.norms.end(), ckpt.layer(l).rms_ffn,
                   ckpt.layer(l).rms_ffn + c.dim);
  }
  p.norms.insert(p.norms.end(), ckpt.rms_final(), ckpt.rms_final() + c.dim);
  return p;
}

}  // namespace joule::fpga
