#include "model/synthetic.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace joule::model {
namespace {

struct Preset {
  const char* name;
  Config config;
};

const Preset kPresets[] = {
    {"stories260K", {64, 172, 5, 8, 4, 512, 512, true}},
    {"stories15M", {288, 768, 6, 6, 6, 32000, 256, true}},
    {"stories42M", {512, 1376, 8, 8, 8, 32000, 1024, true}},
    {"stories110M", {768, 2048, 12, 12, 12, 32000, 1024, true}},
};

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

absl::StatusOr<Config> ShapePreset(absl::string_view name) {
  for (const Preset& p : kPresets) {
    if (name == p.name) return p.config;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown shape '", name,
                   "'; known: ", absl::StrJoin(ShapePresetNames(), ", ")));
}

std::vector<std::string> ShapePresetNames() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.push_back(p.name);
  return names;
}

TensorSource SyntheticWeights(const Config& config, uint64_t seed) {
  return [config, seed](Tensor t, int layer, std::vector<float>* out) {
    if (t == Tensor::kRmsAtt || t == Tensor::kRmsFfn ||
        t == Tensor::kRmsFinal) {
      for (float& v : *out) v = 1.0f;
      return;
    }
    int fan_in = t == Tensor::kW2 ? config.hidden_dim : config.dim;
    float scale = t == Tensor::kTokenEmbedding || t == Tensor::kClassifier
                      ? 1.0f
                      : 1.0f / std::sqrt(static_cast<float>(fan_in));
    uint64_t state =
        SplitMix64(seed ^ SplitMix64(static_cast<uint64_t>(t) * 1024 + layer));
    for (float& v : *out) {
      state = SplitMix64(state);
      // 24 random bits to a uniform value in [-1, 1).
      float u = static_cast<float>(state >> 40) / 8388608.0f - 1.0f;
      v = u * scale * 1.7f;
    }
  };
}

}  // namespace joule::model
