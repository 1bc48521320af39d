#ifndef JOULE_BENCH_BENCH_MODELS_H_
#define JOULE_BENCH_BENCH_MODELS_H_

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "model/checkpoint.h"
#include "model/checkpoint_writer.h"
#include "model/quantize.h"
#include "model/synthetic.h"

namespace joule::bench {

// The bundled checkpoints, from the runfiles of `bazel run` (which starts
// in the binary's runfiles/joule directory).
inline std::string SharedModel(const std::string& name) {
  if (const char* rf = std::getenv("RUNFILES_DIR")) {
    return std::string(rf) + "/shared_models/" + name;
  }
  return "../shared_models/" + name;
}

// A synthetic checkpoint of a published shape, written once to /tmp.
inline std::unique_ptr<model::Checkpoint> Synthetic(const std::string& shape,
                                                    int version) {
  model::Config c = *model::ShapePreset(shape);
  const std::string path =
      "/tmp/joule_bench_" + shape + "_v" + std::to_string(version) + ".bin";
  auto ckpt = model::Checkpoint::Open(path);
  if (ckpt.ok()) return *std::move(ckpt);
  absl::Status s =
      model::WriteCheckpoint(path, c, version, model::ChooseGroupSize(c),
                             model::SyntheticWeights(c, 1));
  if (!s.ok()) std::abort();
  return *model::Checkpoint::Open(path);
}

}  // namespace joule::bench

#endif  // JOULE_BENCH_BENCH_MODELS_H_
