// Writes a checkpoint with seeded random weights of a published shape or any
// shape, for tests and benchmarks of models not shipped here.
//   bazel run //model:synth -- --shape=stories110M --version=2
//   --output=/tmp/s110m.bin
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "model/checkpoint_writer.h"
#include "model/quantize.h"
#include "model/synthetic.h"

ABSL_FLAG(std::string, shape, "stories15M",
          "Preset shape: stories260K, stories15M, stories42M, stories110M. "
          "Any explicit size flag below overrides the preset's value.");
ABSL_FLAG(int, dim, 0, "Model dimension.");
ABSL_FLAG(int, hidden_dim, 0, "FFN hidden dimension.");
ABSL_FLAG(int, n_layers, 0, "Layers.");
ABSL_FLAG(int, n_heads, 0, "Attention heads.");
ABSL_FLAG(int, n_kv_heads, 0, "Key/value heads.");
ABSL_FLAG(int, vocab_size, 0, "Vocabulary size.");
ABSL_FLAG(int, seq_len, 0, "Context length.");
ABSL_FLAG(bool, shared_classifier, true, "Classifier shares the embedding.");
ABSL_FLAG(int, version, 0, "0 (fp32) or 2 (int8 Q8_0).");
ABSL_FLAG(int, group_size, 0, "Q8_0 group size; 0 chooses.");
ABSL_FLAG(uint64_t, seed, 42, "Weight seed.");
ABSL_FLAG(std::string, output, "", "File to write.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Writes synthetic llama2.c checkpoints.");
  absl::ParseCommandLine(argc, argv);
  auto preset = joule::model::ShapePreset(absl::GetFlag(FLAGS_shape));
  if (!preset.ok() || absl::GetFlag(FLAGS_output).empty()) {
    std::fprintf(stderr, "error: %s\n",
                 preset.ok() ? "--output is required"
                             : preset.status().ToString().c_str());
    return 2;
  }
  joule::model::Config c = *preset;
  auto over = [](int flag, int* field) {
    if (flag > 0) *field = flag;
  };
  over(absl::GetFlag(FLAGS_dim), &c.dim);
  over(absl::GetFlag(FLAGS_hidden_dim), &c.hidden_dim);
  over(absl::GetFlag(FLAGS_n_layers), &c.n_layers);
  over(absl::GetFlag(FLAGS_n_heads), &c.n_heads);
  over(absl::GetFlag(FLAGS_n_kv_heads), &c.n_kv_heads);
  over(absl::GetFlag(FLAGS_vocab_size), &c.vocab_size);
  over(absl::GetFlag(FLAGS_seq_len), &c.seq_len);
  c.shared_classifier = absl::GetFlag(FLAGS_shared_classifier);
  int gs = absl::GetFlag(FLAGS_group_size);
  if (gs == 0) gs = joule::model::ChooseGroupSize(c);
  absl::Status s = joule::model::WriteCheckpoint(
      absl::GetFlag(FLAGS_output), c, absl::GetFlag(FLAGS_version), gs,
      joule::model::SyntheticWeights(c, absl::GetFlag(FLAGS_seed)));
  if (!s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "wrote %s: %s, version %d\n",
               absl::GetFlag(FLAGS_output).c_str(), c.DebugString().c_str(),
               absl::GetFlag(FLAGS_version));
  return 0;
}
