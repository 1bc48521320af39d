// Models from GGUF files on the CPU engines: greedy stories260K from an F32
// GGUF is llama2.c's text on the reference and the fast engine, and the
// fast engine's Q8_0 and Q4_0 logits follow the reference engine's on the
// same file (which dequantizes), as for llama2.c's int8 checkpoints.
#include <cmath>
#include <string>
#include <vector>

#include "device/cpu/fast_engine.h"
#include "device/cpu/kernels.h"
#include "device/cpu/reference_engine.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "model/checkpoint_writer.h"
#include "model/gguf_export.h"
#include "model/sampler.h"
#include "model/synthetic.h"
#include "model/tokenizer.h"
#include "tests/reference_text.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

using model::gguf::TensorType;

std::vector<std::string> Isas() {
  std::vector<std::string> isas = {"generic"};
  if (cpu::Avx2Kernels()) isas.push_back("avx2");
  if (cpu::Avx512VnniKernels()) isas.push_back("avx512vnni");
  return isas;
}

std::string Greedy(device::Device& dev, const model::Tokenizer& tok,
                   int steps) {
  device::StepOutput out;
  std::vector<int> t = {model::Tokenizer::kBos};
  std::string text;
  int token = t[0];
  for (int pos = 0; pos < steps; ++pos) {
    EXPECT_TRUE(dev.Step({{9, pos, t}}, &out).ok());
    const int next = model::Argmax(out.row(0));
    if (next == model::Tokenizer::kBos) break;
    text += std::string(tok.Decode(token, next));
    token = t[0] = next;
  }
  return text;
}

std::string Export(const model::Checkpoint& ckpt, TensorType type,
                   const std::string& name) {
  auto tok = model::Tokenizer::Load(testing::SharedModel("tok512.bin"),
                                    ckpt.config().vocab_size);
  EXPECT_TRUE(tok.ok()) << tok.status();
  const std::string path = testing::TempDir() + "/" + name;
  EXPECT_TRUE(model::ExportGguf(ckpt, **tok, type, name, path).ok());
  return path;
}

TEST(GgufEngineTest, GreedyStories260KFromF32GgufMatchesLlama2c) {
  auto src = model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
  ASSERT_TRUE(src.ok()) << src.status();
  auto ckpt = model::Checkpoint::Open(
      Export(**src, TensorType::kF32, "stories260K-f32.gguf"));
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  // The tokenizer comes from the GGUF file too.
  auto tok = model::Tokenizer::FromGguf(*(*ckpt)->gguf(), 512);
  ASSERT_TRUE(tok.ok()) << tok.status();
  device::ReferenceEngine ref({});
  ASSERT_TRUE(ref.LoadModel(**ckpt).ok());
  EXPECT_EQ(Greedy(ref, **tok, 256), testing::kStories260KGreedy);
  for (const std::string& isa : Isas()) {
    device::FastEngine::Options o;
    o.isa = isa;
    device::FastEngine fast(o);
    ASSERT_TRUE(fast.LoadModel(**ckpt).ok());
    EXPECT_EQ(Greedy(fast, **tok, 256), testing::kStories260KGreedy) << isa;
  }
}

// Decodes 8 tokens on both engines from one prompt; returns the largest
// logit difference relative to the largest logit.
double LogitGap(const model::Checkpoint& ckpt, const std::string& isa) {
  device::ReferenceEngine ref({});
  EXPECT_TRUE(ref.LoadModel(ckpt).ok());
  device::FastEngine::Options o;
  o.isa = isa;
  device::FastEngine fast(o);
  EXPECT_TRUE(fast.LoadModel(ckpt).ok());
  device::StepOutput a, b;
  std::vector<int> t = {1, 400, 401, 402, 403, 404};
  EXPECT_TRUE(ref.Step({{1, 0, t}}, &a).ok());
  EXPECT_TRUE(fast.Step({{1, 0, t}}, &b).ok());
  double worst = 0, scale = 0;
  int pos = static_cast<int>(t.size());
  for (int step = 0; step < 8; ++step, ++pos) {
    for (int i = 0; i < ckpt.config().vocab_size; ++i) {
      worst = std::max(worst, double(std::fabs(a.logits[i] - b.logits[i])));
      scale = std::max(scale, double(std::fabs(a.logits[i])));
    }
    t = {model::Argmax(a.row(0))};
    EXPECT_TRUE(ref.Step({{1, pos, t}}, &a).ok());
    EXPECT_TRUE(fast.Step({{1, pos, t}}, &b).ok());
  }
  return worst / scale;
}

TEST(GgufEngineTest, Q8_0AndQ4_0FollowTheDequantizingReference) {
  model::Config c = *model::ShapePreset("stories15M");
  c.seq_len = 64;
  c.vocab_size = 512;  // tok512's, so the file carries a real vocabulary.
  const std::string path = testing::TempDir() + "/s15m.bin";
  ASSERT_TRUE(
      model::WriteCheckpoint(path, c, 0, 0, model::SyntheticWeights(c, 11))
          .ok());
  auto src = model::Checkpoint::Open(path);
  ASSERT_TRUE(src.ok()) << src.status();
  for (TensorType type : {TensorType::kQ8_0, TensorType::kQ4_0}) {
    auto ckpt = model::Checkpoint::Open(
        Export(**src, type, "s15m-" + std::to_string(int(type)) + ".gguf"));
    ASSERT_TRUE(ckpt.ok()) << ckpt.status();
    for (const std::string& isa : Isas()) {
      const double gap = LogitGap(**ckpt, isa);
      std::printf("%s %s: logits max |diff| / max |logit| = %.2e\n",
                  model::WeightFormatName((*ckpt)->format()), isa.c_str(), gap);
      // int8 activations against the reference's fp32 ones, as for
      // llama2.c's int8 checkpoints (fast_engine_test).
      EXPECT_LT(gap, 0.05) << isa;
    }
  }
}

}  // namespace
}  // namespace joule
