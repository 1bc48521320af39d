#include "model/checkpoint.h"

#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/checkpoint_writer.h"
#include "model/convert.h"
#include "model/quantize.h"
#include "model/synthetic.h"
#include "tests/test_paths.h"

namespace joule::model {
namespace {

using ::testing::HasSubstr;

// Debian's absl::string_view is not std's; gmock prints std::string better.
std::string Msg(const absl::Status& s) { return std::string(s.message()); }

std::string ReadFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  std::string data;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) data.append(buf, n);
  std::fclose(f);
  return data;
}

std::string WriteTemp(const std::string& name, const std::string& data) {
  const std::string path = joule::testing::TempDir() + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(data.data(), 1, data.size(), f);
  std::fclose(f);
  return path;
}

TEST(CheckpointTest, LoadsStories260KVersion0) {
  auto ckpt = Checkpoint::Open(joule::testing::SharedModel("stories260K.bin"));
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  const Config& c = (*ckpt)->config();
  EXPECT_EQ((*ckpt)->version(), 0);
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.seq_len, 512);
  EXPECT_TRUE(c.shared_classifier);
  EXPECT_EQ(c.ParameterCount(), 260032);
  EXPECT_EQ((*ckpt)->classifier().f32, (*ckpt)->token_embedding().f32);
}

TEST(CheckpointTest, TruncatedFileNamesTheProblem) {
  const std::string data =
      ReadFile(joule::testing::SharedModel("stories260K.bin"));
  for (size_t keep : {size_t{0}, size_t{10}, size_t{28}, size_t{1000},
                      data.size() / 2, data.size() - 1}) {
    auto ckpt = Checkpoint::Open(WriteTemp("trunc.bin", data.substr(0, keep)));
    ASSERT_FALSE(ckpt.ok()) << keep;
    EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument);
    if (keep >= 28) {
      EXPECT_THAT(Msg(ckpt.status()), HasSubstr("truncated")) << keep;
      EXPECT_THAT(Msg(ckpt.status()), HasSubstr("1056540 bytes"));
    }
  }
}

TEST(CheckpointTest, TrailingBytesAreAnError) {
  const std::string data =
      ReadFile(joule::testing::SharedModel("stories260K.bin"));
  auto ckpt = Checkpoint::Open(WriteTemp("long.bin", data + "junk"));
  ASSERT_FALSE(ckpt.ok());
  EXPECT_THAT(Msg(ckpt.status()), HasSubstr("4 unexpected bytes"));
}

TEST(CheckpointTest, CorruptHeadersAreErrorsNotCrashes) {
  const std::string data =
      ReadFile(joule::testing::SharedModel("stories260K.bin"));
  auto with_field = [&](int index, int32_t value) {
    std::string d = data;
    std::memcpy(d.data() + index * 4, &value, 4);
    return Checkpoint::Open(WriteTemp("corrupt.bin", d));
  };
  EXPECT_THAT(Msg(with_field(0, -64).status()), HasSubstr("positive"));
  EXPECT_THAT(Msg(with_field(3, 7).status()),
              HasSubstr("n_heads must divide dim"));
  EXPECT_THAT(Msg(with_field(4, 3).status()), HasSubstr("n_kv_heads"));
  EXPECT_THAT(Msg(with_field(0, 1 << 30).status()), HasSubstr("larger"));
  EXPECT_THAT(Msg(with_field(2, 6).status()), HasSubstr("truncated"));
  // Each size within its limit, their products not: dim 2^16 in one head
  // over 2^20 positions would size RoPE tables at 2^36 floats.
  {
    std::string d = data;
    const int32_t fields[7] = {1 << 16, 64, 5, 1, 1, 512, 1 << 20};
    std::memcpy(d.data(), fields, sizeof(fields));
    EXPECT_THAT(Msg(Checkpoint::Open(WriteTemp("products.bin", d)).status()),
                HasSubstr("context length x head size exceeds 2^26"));
  }
  // Unshared classifier claimed but absent.
  EXPECT_FALSE(with_field(5, -512).ok());
  // Negating INT32_MIN would overflow (checkpoint_fuzzer found it).
  EXPECT_THAT(Msg(with_field(5, std::numeric_limits<int32_t>::min()).status()),
              HasSubstr("vocab_size -2^31"));

  // Random header bytes never crash the loader.
  std::mt19937 rng(1);
  for (int i = 0; i < 300; ++i) {
    std::string d = data.substr(0, 4096);
    for (int b = 0; b < 28; ++b) {
      if (rng() % 3 == 0) d[b] = static_cast<char>(rng());
    }
    auto ckpt = Checkpoint::Open(WriteTemp("fuzz.bin", d));
    EXPECT_FALSE(ckpt.ok());
  }
}

TEST(CheckpointTest, MissingFileIsNotFound) {
  EXPECT_EQ(Checkpoint::Open("/nonexistent.bin").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(CheckpointTest, Version2RoundTripAndCorruption) {
  auto v0 = Checkpoint::Open(joule::testing::SharedModel("stories260K.bin"));
  ASSERT_TRUE(v0.ok());
  const std::string path = joule::testing::TempDir() + "/s260k_q8.bin";
  ASSERT_TRUE(ConvertCheckpoint(**v0, path, 2, 0).ok());
  auto v2 = Checkpoint::Open(path);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ((*v2)->version(), 2);
  EXPECT_EQ((*v2)->format(), WeightFormat::kQ8_0);
  EXPECT_EQ((*v2)->group_size(), 4);  // 172 = 4 * 43.
  EXPECT_EQ((*v2)->config().hidden_dim, 172);
  EXPECT_TRUE((*v2)->config().shared_classifier);

  const std::string data = ReadFile(path);
  std::string bad_magic = data;
  bad_magic[4] = 7;  // version 7
  EXPECT_THAT(Msg(Checkpoint::Open(WriteTemp("v7.bin", bad_magic)).status()),
              HasSubstr("version 7"));
  std::string bad_gs = data;
  int32_t gs = 3;
  std::memcpy(bad_gs.data() + 37, &gs, 4);
  EXPECT_THAT(Msg(Checkpoint::Open(WriteTemp("gs3.bin", bad_gs)).status()),
              HasSubstr("group size 3"));
  EXPECT_THAT(Msg(Checkpoint::Open(WriteTemp("v2trunc.bin",
                                             data.substr(0, data.size() - 100)))
                      .status()),
              HasSubstr("truncated"));
  EXPECT_FALSE(
      Checkpoint::Open(WriteTemp("v2short.bin", data.substr(0, 200))).ok());
}

TEST(QuantizeTest, GroupSizeDividesDimAndHidden) {
  Config c;
  c.dim = 64;
  c.hidden_dim = 172;
  EXPECT_EQ(ChooseGroupSize(c), 4);
  c.dim = 288;
  c.hidden_dim = 768;
  EXPECT_EQ(ChooseGroupSize(c), 32);
  c.dim = 768;
  c.hidden_dim = 2048;
  EXPECT_EQ(ChooseGroupSize(c), 64);
}

TEST(QuantizeTest, Q8RoundTripWithinHalfAStep) {
  std::vector<float> x = {0.5f, -1.0f, 0.25f, 0.0f, 3.0f, 2.0f, -3.0f, 1.0f};
  std::vector<int8_t> q(8);
  std::vector<float> s(2);
  QuantizeQ8_0(x.data(), 8, 4, q.data(), s.data());
  EXPECT_FLOAT_EQ(s[0], 1.0f / 127);
  EXPECT_EQ(q[1], -127);
  for (int i = 0; i < 8; ++i) {
    EXPECT_NEAR(q[i] * s[i / 4], x[i], s[i / 4] / 2 + 1e-7);
  }
  std::vector<float> zeros(4, 0.0f);
  QuantizeQ8_0(zeros.data(), 4, 4, q.data(), s.data());
  EXPECT_EQ(q[0], 0);
  EXPECT_EQ(s[0], 0.0f);
}

TEST(SyntheticTest, SameSeedSameWeightsAcrossVersions) {
  Config c = *ShapePreset("stories260K");
  c.n_layers = 2;
  c.shared_classifier = false;
  const std::string p0 = joule::testing::TempDir() + "/syn0.bin";
  const std::string p0b = joule::testing::TempDir() + "/syn0b.bin";
  const std::string p2 = joule::testing::TempDir() + "/syn2.bin";
  ASSERT_TRUE(WriteCheckpoint(p0, c, 0, 0, SyntheticWeights(c, 7)).ok());
  ASSERT_TRUE(WriteCheckpoint(p0b, c, 0, 0, SyntheticWeights(c, 7)).ok());
  ASSERT_TRUE(WriteCheckpoint(p2, c, 2, 4, SyntheticWeights(c, 7)).ok());
  EXPECT_EQ(ReadFile(p0), ReadFile(p0b));
  auto a = Checkpoint::Open(p0);
  auto b = Checkpoint::Open(p2);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE((*a)->config().shared_classifier);
  const Matrix& wa = (*a)->layer(1).w2;
  const Matrix& wb = (*b)->layer(1).w2;
  std::vector<float> ra(wa.cols), rb(wb.cols);
  for (int r = 0; r < wa.rows; ++r) {
    wa.DequantizeRow(r, ra.data());
    wb.DequantizeRow(r, rb.data());
    for (int j = 0; j < wa.cols; ++j) {
      ASSERT_NEAR(ra[j], rb[j],
                  wb.scales[(int64_t{r} * wb.cols + j) / 4] / 2 + 1e-7);
    }
  }
  // A different seed gives different weights.
  const std::string p0c = joule::testing::TempDir() + "/syn0c.bin";
  ASSERT_TRUE(WriteCheckpoint(p0c, c, 0, 0, SyntheticWeights(c, 8)).ok());
  EXPECT_NE(ReadFile(p0), ReadFile(p0c));
}

TEST(SyntheticTest, PublishedShapesHaveTheirParameterCounts) {
  EXPECT_NEAR(ShapePreset("stories15M")->ParameterCount(), 15.2e6, 0.1e6);
  EXPECT_NEAR(ShapePreset("stories110M")->ParameterCount(), 110e6, 1e6);
  EXPECT_FALSE(ShapePreset("gpt5").ok());
}

TEST(SyntheticTest, Stories15MShapeWritesAndLoads) {
  Config c = *ShapePreset("stories15M");
  const std::string path = joule::testing::TempDir() + "/s15m_q8.bin";
  ASSERT_TRUE(
      WriteCheckpoint(path, c, 2, ChooseGroupSize(c), SyntheticWeights(c, 1))
          .ok());
  auto ckpt = Checkpoint::Open(path);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ((*ckpt)->group_size(), 32);
  EXPECT_EQ((*ckpt)->config().vocab_size, 32000);
}

}  // namespace
}  // namespace joule::model
