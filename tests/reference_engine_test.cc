// The reference engine against llama2.c's published greedy output.
#include "device/cpu/reference_engine.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "model/sampler.h"
#include "model/tokenizer.h"
#include "tests/reference_text.h"
#include "tests/test_paths.h"

namespace joule {
namespace {

using device::ReferenceEngine;
using device::SequenceChunk;
using device::StepOutput;

// llama2.c's generate loop: feed each token, take argmax, stop at BOS or
// after `steps` positions.
std::string GreedyLlama2c(device::Device& dev, const model::Tokenizer& tok,
                          int steps) {
  std::vector<int> prompt = tok.Encode("", /*bos=*/true);
  StepOutput out;
  std::vector<int> one = {prompt[0]};
  EXPECT_TRUE(dev.Step({SequenceChunk{7, 0, one}}, &out).ok());
  std::string text;
  int token = prompt[0];
  for (int pos = 0; pos < steps; ++pos) {
    int next = model::Argmax(out.row(0));
    if (next == 1) break;
    text += std::string(tok.Decode(token, next));
    token = next;
    if (pos + 1 == steps) break;
    std::vector<int> t = {token};
    EXPECT_TRUE(dev.Step({SequenceChunk{7, pos + 1, t}}, &out).ok());
  }
  return text;
}

TEST(ReferenceEngineTest, GreedyStories260KMatchesLlama2c) {
  auto ckpt = model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  auto tok = model::Tokenizer::Load(testing::SharedModel("tok512.bin"),
                                    (*ckpt)->config().vocab_size);
  ASSERT_TRUE(tok.ok()) << tok.status();
  ReferenceEngine dev({});
  ASSERT_TRUE(dev.LoadModel(**ckpt).ok());
  EXPECT_EQ(GreedyLlama2c(dev, **tok, 256), testing::kStories260KGreedy);
}

}  // namespace
}  // namespace joule
