// HLS C simulation of the FPGA kernel against the CPU reference engine on
// int8 checkpoints: identical greedy tokens, logits within tolerance, at
// group sizes 4, 32 and 64 and positions past 257.
#include <cmath>
#include <memory>
#include <vector>

#include "device/cpu/reference_engine.h"
#include "device/fpga/kernel/forward_kernel.h"
#include "device/fpga/packed_weights.h"
#include "device/fpga/vu9p_model.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "model/checkpoint_writer.h"
#include "model/convert.h"
#include "model/sampler.h"
#include "model/synthetic.h"
#include "tests/test_paths.h"

namespace joule::fpga {
namespace {

template <class S>
void CompareGreedy(const model::Checkpoint& ckpt, int steps) {
  auto packed = PackWeights(ckpt);
  ASSERT_TRUE(packed.ok()) << packed.status();
  ASSERT_EQ(ckpt.group_size(), S::GS);
  device::ReferenceEngine ref({});
  ASSERT_TRUE(ref.LoadModel(ckpt).ok());
  std::vector<float> kc(int64_t{S::SEQ_LEN} * S::LAYERS * S::KV_DIM);
  std::vector<float> vc(kc.size());
  std::vector<float> logits(S::VOCAB);
  device::StepOutput out;
  int token = 1;
  double max_diff = 0;
  for (int pos = 0; pos < steps; ++pos) {
    Forward<S>(packed->q8.data(), packed->scales.data(), packed->norms.data(),
               ckpt.config().shared_classifier, token, pos, kc.data(),
               vc.data(), logits.data());
    std::vector<int> t = {token};
    ASSERT_TRUE(ref.Step({{1, pos, t}}, &out).ok());
    for (int i = 0; i < S::VOCAB; ++i) {
      max_diff =
          std::max(max_diff, double(std::fabs(logits[i] - out.logits[i])));
    }
    const int a = model::Argmax(logits), b = model::Argmax(out.row(0));
    ASSERT_EQ(a, b) << "greedy tokens differ at position " << pos;
    token = a;
  }
  EXPECT_LT(max_diff, 1e-4) << "logits drifted";
}

TEST(FpgaKernelTest, Stories260KInt8GroupSize4PastPosition257) {
  auto fp32 = model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
  ASSERT_TRUE(fp32.ok());
  const std::string path = testing::TempDir() + "/s260k_fpga.bin";
  ASSERT_TRUE(model::ConvertCheckpoint(**fp32, path, 2, 0).ok());
  auto ckpt = model::Checkpoint::Open(path);
  ASSERT_TRUE(ckpt.ok());
  CompareGreedy<Shape<64, 172, 5, 8, 4, 512, 512, 4>>(**ckpt, 300);
}

TEST(FpgaKernelTest, Stories15MShapeGroupSize32) {
  model::Config c = *model::ShapePreset("stories15M");
  const std::string path = testing::TempDir() + "/s15m_fpga.bin";
  ASSERT_TRUE(
      model::WriteCheckpoint(path, c, 2, 32, model::SyntheticWeights(c, 3))
          .ok());
  auto ckpt = model::Checkpoint::Open(path);
  ASSERT_TRUE(ckpt.ok());
  CompareGreedy<Shape<288, 768, 6, 6, 6, 32000, 256, 32>>(**ckpt, 12);
}

TEST(FpgaKernelTest, Stories110MShapeGroupSize64) {
  model::Config c = *model::ShapePreset("stories110M");
  const std::string path = testing::TempDir() + "/s110m_fpga.bin";
  ASSERT_TRUE(
      model::WriteCheckpoint(path, c, 2, 64, model::SyntheticWeights(c, 4))
          .ok());
  auto ckpt = model::Checkpoint::Open(path);
  ASSERT_TRUE(ckpt.ok());
  CompareGreedy<Shape<768, 2048, 12, 12, 12, 32000, 1024, 64>>(**ckpt, 3);
}

TEST(FpgaKernelTest, RefusesFp32Checkpoints) {
  auto fp32 = model::Checkpoint::Open(testing::SharedModel("stories260K.bin"));
  ASSERT_TRUE(fp32.ok());
  EXPECT_EQ(PackWeights(**fp32).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(Vu9pModelTest, CyclesGrowWithPositionAndWeightsDominate) {
  Vu9pModel m;
  model::Config c = *model::ShapePreset("stories110M");
  const int64_t at0 = m.CyclesPerToken(c, 0), at512 = m.CyclesPerToken(c, 512);
  EXPECT_GT(at512, at0);
  // Matvecs: ~ parameters / lanes cycles.
  EXPECT_NEAR(double(at0), c.ParameterCount() / 32.0,
              0.2 * c.ParameterCount() / 32.0);
  EXPECT_GT(m.SecondsPerToken(c, 0), 0);
}

}  // namespace
}  // namespace joule::fpga
