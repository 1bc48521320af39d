// Rewrites a llama2.c checkpoint as version 0 (fp32) or 2 (int8 Q8_0).
//   bazel run //model:convert_tool -- --input=in.bin --output=out.bin
//   --version=2
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "model/checkpoint.h"
#include "model/convert.h"
#include "model/quantize.h"

ABSL_FLAG(std::string, input, "", "Checkpoint to read (version 0, 1 or 2).");
ABSL_FLAG(std::string, output, "", "Checkpoint to write.");
ABSL_FLAG(int, version, 2, "Version to write: 0 (fp32) or 2 (int8 Q8_0).");
ABSL_FLAG(int, group_size, 0,
          "Q8_0 group size; 0 picks the largest power of two <= 64 that "
          "divides dim and hidden_dim.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Converts llama2.c checkpoints.");
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_input).empty() ||
      absl::GetFlag(FLAGS_output).empty()) {
    std::fprintf(stderr, "error: --input and --output are required\n");
    return 2;
  }
  auto ckpt = joule::model::Checkpoint::Open(absl::GetFlag(FLAGS_input));
  if (!ckpt.ok()) {
    std::fprintf(stderr, "error: %s\n", ckpt.status().ToString().c_str());
    return 1;
  }
  int gs = absl::GetFlag(FLAGS_group_size);
  if (gs == 0) gs = joule::model::ChooseGroupSize((*ckpt)->config());
  absl::Status s = joule::model::ConvertCheckpoint(
      **ckpt, absl::GetFlag(FLAGS_output), absl::GetFlag(FLAGS_version), gs);
  if (!s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "wrote %s (version %d, group size %d)\n",
               absl::GetFlag(FLAGS_output).c_str(),
               absl::GetFlag(FLAGS_version), gs);
  return 0;
}
