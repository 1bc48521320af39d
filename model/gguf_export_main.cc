// Writes a llama2.c checkpoint and tokenizer as a GGUF file llama.cpp reads.
//   bazel run -c opt //model:gguf_export_tool -- --model=stories110M.bin \
//     --tokenizer=tokenizer.bin --type=q8_0 --output=stories110M-q8_0.gguf
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "model/checkpoint.h"
#include "model/gguf.h"
#include "model/gguf_export.h"
#include "model/tokenizer.h"

ABSL_FLAG(std::string, model, "", "llama2.c checkpoint to read.");
ABSL_FLAG(std::string, tokenizer, "", "Its tokenizer.bin.");
ABSL_FLAG(std::string, type, "q8_0",
          "Weight matrices' type: f32, f16, bf16, q8_0 or q4_0.");
ABSL_FLAG(std::string, name, "", "general.name (default: the model file).");
ABSL_FLAG(std::string, output, "", "GGUF file to write.");

namespace {

using joule::model::gguf::TensorType;

bool ParseType(std::string s, TensorType* t) {
  s = absl::AsciiStrToLower(s);
  if (s == "f32")
    *t = TensorType::kF32;
  else if (s == "f16")
    *t = TensorType::kF16;
  else if (s == "bf16")
    *t = TensorType::kBF16;
  else if (s == "q8_0")
    *t = TensorType::kQ8_0;
  else if (s == "q4_0")
    *t = TensorType::kQ4_0;
  else
    return false;
  return true;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Writes a llama2.c checkpoint as a GGUF file.");
  absl::ParseCommandLine(argc, argv);
  const std::string model = absl::GetFlag(FLAGS_model);
  const std::string output = absl::GetFlag(FLAGS_output);
  if (model.empty() || absl::GetFlag(FLAGS_tokenizer).empty() ||
      output.empty()) {
    std::fprintf(stderr,
                 "error: --model, --tokenizer and --output are required\n");
    return 2;
  }
  TensorType type;
  if (!ParseType(absl::GetFlag(FLAGS_type), &type)) {
    std::fprintf(stderr,
                 "error: --type must be f32, f16, bf16, q8_0 or q4_0\n");
    return 2;
  }
  auto ckpt = joule::model::Checkpoint::Open(model);
  if (!ckpt.ok()) return Fail(ckpt.status().ToString());
  auto tok = joule::model::Tokenizer::Load(absl::GetFlag(FLAGS_tokenizer),
                                           (*ckpt)->config().vocab_size);
  if (!tok.ok()) return Fail(tok.status().ToString());
  std::string name = absl::GetFlag(FLAGS_name);
  if (name.empty()) name = model.substr(model.find_last_of('/') + 1);
  absl::Status s = joule::model::ExportGguf(**ckpt, **tok, type, name, output);
  if (!s.ok()) return Fail(s.ToString());
  std::fprintf(stderr, "wrote %s (%s)\n", output.c_str(),
               joule::model::gguf::TensorTypeName(uint32_t(type)).c_str());
  return 0;
}
