// GGUF: the container parser on well-formed files of every supported type
// and on hostile ones, ggml's scalar and block encodings, and a llama model
// with its tokenizer read from GGUF against the same model from llama2.c
// files.
#include "model/gguf.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "model/checkpoint_writer.h"
#include "model/ggml_quants.h"
#include "model/gguf_export.h"
#include "model/gguf_writer.h"
#include "model/synthetic.h"
#include "model/tokenizer.h"
#include "tests/test_paths.h"

namespace joule::model {
namespace {

using gguf::TensorType;
using ::testing::HasSubstr;

absl::StatusOr<std::unique_ptr<gguf::File>> ParseBytes(const std::string& b) {
  return gguf::File::Parse(reinterpret_cast<const unsigned char*>(b.data()),
                           b.size());
}

std::vector<float> Ramp(int64_t n, float scale = 0.01f) {
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = std::sin(i * 0.37f) * scale * (i % 7);
  return x;
}

std::string Raw(const std::vector<float>& x) {
  return std::string(reinterpret_cast<const char*>(x.data()), x.size() * 4);
}

// ---------------------------------------------------------------- encodings

TEST(GgmlQuantsTest, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = ggml::HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(ggml::HalfToFloat(ggml::FloatToHalf(f))));
      continue;
    }
    ASSERT_EQ(ggml::FloatToHalf(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(GgmlQuantsTest, HalfRoundsToNearestEven) {
  EXPECT_EQ(ggml::HalfToFloat(ggml::FloatToHalf(1.0f)), 1.0f);
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties go to even (1).
  EXPECT_EQ(ggml::FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(ggml::FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(ggml::FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(ggml::FloatToHalf(65520.0f), 0x7c00);  // Rounds to inf.
  EXPECT_EQ(ggml::FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // Subnormal.
  EXPECT_EQ(ggml::FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // Tie: even.
  EXPECT_EQ(ggml::FloatToHalf(-0.0f), 0x8000);
}

TEST(GgmlQuantsTest, Bf16KeepsTheTopHalfRounded) {
  EXPECT_EQ(ggml::FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(ggml::Bf16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(ggml::FloatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // Tie.
  EXPECT_EQ(ggml::FloatToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
}

TEST(GgmlQuantsTest, Q8_0WithinHalfAStepQ4_0WithinOne) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> x(32 * 64);
  for (float& v : x) v = normal(rng);
  x[5] = 0;  // A block with an exact zero, and one all zero:
  std::fill(x.begin() + 64, x.begin() + 96, 0.0f);
  for (TensorType type : {TensorType::kQ8_0, TensorType::kQ4_0}) {
    std::string blocks;
    std::vector<float> y(x.size());
    if (type == TensorType::kQ8_0) {
      ggml::QuantizeQ8_0(x.data(), x.size(), &blocks);
      ASSERT_EQ(blocks.size(), x.size() / 32 * ggml::kQ8_0BlockBytes);
      ggml::DequantizeQ8_0(
          reinterpret_cast<const unsigned char*>(blocks.data()), x.size(),
          y.data());
    } else {
      ggml::QuantizeQ4_0(x.data(), x.size(), &blocks);
      ASSERT_EQ(blocks.size(), x.size() / 32 * ggml::kQ4_0BlockBytes);
      ggml::DequantizeQ4_0(
          reinterpret_cast<const unsigned char*>(blocks.data()), x.size(),
          y.data());
    }
    // Q8_0 rounds to half a step; Q4_0 maps the signed maximum to -8, so
    // a value of the other sign near it clamps at +7: up to a whole step.
    const float steps = type == TensorType::kQ8_0 ? 0.5f / 127 : 1.0f / 8;
    for (size_t b = 0; b < x.size(); b += 32) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b + j]));
      // Plus the fp16 scale's rounding over the whole range.
      const float tol = amax * steps + amax * 1e-3f + 1e-7f;
      for (int j = 0; j < 32; ++j) {
        ASSERT_NEAR(y[b + j], x[b + j], tol) << int(type) << " at " << b + j;
      }
    }
    for (int j = 64; j < 96; ++j) EXPECT_EQ(y[j], 0.0f);
  }
}

TEST(GgmlQuantsTest, Q4_0LayoutIsLowNibblesThenHighNibbles) {
  // d = max / -8 with max = -8: d = 1, so value v is stored as v + 8.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = (j % 16) - 8;
  std::string blocks;
  ggml::QuantizeQ4_0(x.data(), 32, &blocks);
  ASSERT_EQ(blocks.size(), 18u);
  EXPECT_EQ(ggml::HalfToFloat(uint8_t(blocks[0]) | uint8_t(blocks[1]) << 8),
            1.0f);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(uint8_t(blocks[2 + j]), uint8_t(j | j << 4)) << j;
  }
}

// ---------------------------------------------------------------- container

std::string SmallFile(uint32_t version = 3) {
  gguf::Writer w(version);
  w.SetString("general.architecture", "test");
  w.SetUint32("u32", 4000000000u);
  w.SetInt32("i32", -5);
  w.SetUint64("u64", ~uint64_t{0});
  w.SetFloat32("f32", 0.25f);
  w.SetBool("yes", true);
  w.SetStrings("strings", {"a", "",
                           "\xe2\x96\x81"
                           "b"});
  w.SetFloat32s("floats", {1.5f, -2});
  w.SetInt32s("ints", {3, -4, 5});
  const std::vector<float> v = Ramp(64);
  w.AddTensor("f32", {64}, uint32_t(TensorType::kF32), Raw(v));
  std::string h;
  for (float f : v) {
    const uint16_t x = ggml::FloatToHalf(f);
    h.append(reinterpret_cast<const char*>(&x), 2);
  }
  w.AddTensor("f16", {32, 2}, uint32_t(TensorType::kF16), h);
  w.AddTensor("bf16", {64}, uint32_t(TensorType::kBF16), h);
  std::string q8, q4;
  ggml::QuantizeQ8_0(v.data(), 64, &q8);
  ggml::QuantizeQ4_0(v.data(), 64, &q4);
  w.AddTensor("q8", {32, 2}, uint32_t(TensorType::kQ8_0), q8);
  w.AddTensor("q4", {64}, uint32_t(TensorType::kQ4_0), q4);
  return w.Serialize();
}

TEST(GgufTest, ParsesMetadataOfEveryTypeAndTensorsOfEveryType) {
  for (uint32_t version : {2u, 3u}) {
    const std::string bytes = SmallFile(version);
    auto f = ParseBytes(bytes);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ((*f)->version(), version);
    EXPECT_EQ(*(*f)->GetString("general.architecture"), "test");
    EXPECT_EQ(*(*f)->GetInt("u32"), 4000000000);
    EXPECT_EQ(*(*f)->GetInt("i32"), -5);
    EXPECT_THAT((*f)->GetInt("u64").status().message(),
                HasSubstr("out of range"));
    EXPECT_EQ(*(*f)->GetFloat("f32"), 0.25);
    EXPECT_TRUE(*(*f)->GetBool("yes"));
    EXPECT_THAT(*(*f)->GetStrings("strings"),
                ::testing::ElementsAre("a", "",
                                       "\xe2\x96\x81"
                                       "b"));
    EXPECT_THAT(*(*f)->GetFloats("floats"), ::testing::ElementsAre(1.5f, -2));
    EXPECT_THAT(*(*f)->GetInts("ints"), ::testing::ElementsAre(3, -4, 5));
    EXPECT_TRUE(absl::IsNotFound((*f)->GetInt("absent").status()));
    EXPECT_THAT((*f)->GetInt("f32").status().message(),
                HasSubstr("f32 is float32, expected an integer"));
    ASSERT_EQ((*f)->tensors().size(), 5u);
    const struct {
      const char* name;
      uint64_t bytes;
    } want[] = {
        {"f32", 256}, {"f16", 128}, {"bf16", 128}, {"q8", 68}, {"q4", 36}};
    for (const auto& w : want) {
      const gguf::TensorInfo* t = (*f)->FindTensor(w.name);
      ASSERT_NE(t, nullptr) << w.name;
      EXPECT_EQ(t->bytes, w.bytes) << w.name;
      EXPECT_EQ(t->elements, 64) << w.name;
      EXPECT_EQ(
          (t->data - reinterpret_cast<const unsigned char*>(bytes.data())) %
              gguf::kDefaultAlignment,
          0u);
    }
    const gguf::TensorInfo* f32 = (*f)->FindTensor("f32");
    EXPECT_EQ(std::memcmp(f32->data, Raw(Ramp(64)).data(), 256), 0);
  }
}

// Byte offsets in SmallFile: after the 24-byte header comes the first key.
constexpr size_t kFirstKey = 24;

void Expect(const std::string& bytes, absl::string_view message) {
  auto f = ParseBytes(bytes);
  ASSERT_FALSE(f.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(f.status())) << f.status();
  EXPECT_THAT(f.status().message(), HasSubstr(message));
}

template <typename T>
void Poke(std::string* b, size_t at, T v) {
  std::memcpy(b->data() + at, &v, sizeof(T));
}

TEST(GgufTest, EveryTruncationIsRefused) {
  const std::string bytes = SmallFile();
  auto whole = ParseBytes(bytes);
  ASSERT_TRUE(whole.ok());
  // Up to the last tensor's end every prefix is refused; the padding after
  // it is optional.
  const gguf::TensorInfo& last = (*whole)->tensors().back();
  const size_t end = last.data + last.bytes -
                     reinterpret_cast<const unsigned char*>(bytes.data());
  for (size_t n = 0; n < end; ++n) {
    auto f = ParseBytes(bytes.substr(0, n));
    ASSERT_FALSE(f.ok()) << "prefix of " << n << " bytes was accepted";
  }
  EXPECT_TRUE(ParseBytes(bytes.substr(0, end)).ok());
}

TEST(GgufTest, LyingHeadersAreRefusedByName) {
  const std::string good = SmallFile();
  std::string b = good;
  Poke<uint32_t>(&b, 0, 0x12345678);
  Expect(b, "not a GGUF file");
  b = good;
  Poke<uint32_t>(&b, 4, 1);
  Expect(b, "GGUF version 1 is not supported");
  b = good;
  Poke<uint64_t>(&b, 16, uint64_t{1} << 60);  // Metadata count.
  Expect(b, "more than the file's");
  b = good;
  Poke<uint64_t>(&b, 8, ~uint64_t{0});  // Tensor count.
  Expect(b, "more than the file's");
  b = good;
  Poke<uint64_t>(&b, kFirstKey, ~uint64_t{0} - 3);  // Key length.
  Expect(b, "file ends inside a metadata key");
}

// A file with one key of `type` and `value` bytes, and no tensors.
std::string OneKey(uint32_t type, const std::string& value,
                   const std::string& key = "k") {
  std::string b;
  auto put = [&b](auto v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof(v));
  };
  put(gguf::kMagic);
  put(uint32_t{3});
  put(uint64_t{0});
  put(uint64_t{1});
  put(uint64_t{key.size()});
  b += key;
  put(type);
  b += value;
  return b;
}

std::string U32(uint32_t v) {
  return std::string(reinterpret_cast<char*>(&v), 4);
}
std::string U64(uint64_t v) {
  return std::string(reinterpret_cast<char*>(&v), 8);
}

TEST(GgufTest, LyingMetadataIsRefusedByName) {
  Expect(OneKey(13, U32(0)), "metadata k has unknown value type 13");
  Expect(OneKey(7, std::string(1, '\2')), "k is a bool of value 2");
  Expect(OneKey(9, U32(9) + U64(1)), "array of arrays");
  Expect(OneKey(9, U32(44) + U64(1)), "array of unknown value type 44");
  Expect(OneKey(9, U32(4) + U64(uint64_t{1} << 62)), "claims");
  Expect(OneKey(9, U32(8) + U64(uint64_t{1} << 61)), "claims");
  Expect(OneKey(8, U64(~uint64_t{0})), "file ends inside the value of k");
  Expect(OneKey(4, U32(48), "general.alignment"), "power of two");
  Expect(OneKey(5, U32(32), "general.alignment"), "power of two");
  std::string twice = OneKey(4, U32(1));
  Poke<uint64_t>(&twice, 16, 2);
  twice += U64(1) + "k" + U32(4) + U32(2);
  Expect(twice, "metadata key k appears twice");
}

// Counts and names a parser would pay for in memory or in logs: counts
// beyond what is left after the metadata, beyond sane caps, names that are
// not short printable ASCII, bools that are not 0/1 in arrays, doubles
// with no float value.
TEST(GgufTest, CostlyOrUnprintableInputsAreRefused) {
  // A 1 MB file can hold 80k minimal entries: more than Joule parses.
  std::string many = OneKey(0, std::string(1, '\0'));
  Poke<uint64_t>(&many, 16, 70000);
  many.append(1 << 20, '\0');
  Expect(many, "Joule reads at most 65536");
  // Tensors the file's bytes could hold until the metadata used them.
  std::string big = OneKey(8, U64(4000) + std::string(4000, 'x'));
  Poke<uint64_t>(&big, 8, 100);
  Expect(big, "after the metadata");
  Expect(OneKey(4, U32(1), "bad\nkey"), "metadata key 0 holds a byte");
  Expect(OneKey(4, U32(1), std::string(300, 'k')), "is 300 bytes long");
  Expect(OneKey(9, U32(7) + U64(3) + std::string("\1\0\3", 3)),
         "k element 2 is a bool of value 3");
  const double huge = 1e300;
  // The File points into its bytes: they must outlive it.
  const std::string doubles = OneKey(
      9, U32(12) + U64(1) +
             std::string(reinterpret_cast<const char*>(&huge), sizeof(huge)));
  auto f = ParseBytes(doubles);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(std::string((*f)->GetFloats("k").status().message()),
              HasSubstr("beyond the float range"));
}

// A file with no metadata and the given tensor descriptions and data.
std::string Tensors(const std::vector<std::string>& infos,
                    const std::string& data) {
  std::string b;
  auto put = [&b](auto v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof(v));
  };
  put(gguf::kMagic);
  put(uint32_t{3});
  put(uint64_t{infos.size()});
  put(uint64_t{0});
  for (const std::string& i : infos) b += i;
  b.append((32 - b.size() % 32) % 32, '\0');
  return b + data;
}

std::string Info(const std::string& name, std::vector<uint64_t> dims,
                 uint32_t type, uint64_t offset) {
  std::string b = U64(name.size()) + name + U32(dims.size());
  for (uint64_t d : dims) b += U64(d);
  return b + U32(type) + U64(offset);
}

TEST(GgufTest, LyingTensorsAreRefusedByName) {
  const std::string data(256, '\0');
  EXPECT_TRUE(ParseBytes(Tensors({Info("t", {64}, 0, 0)}, data)).ok());
  Expect(Tensors({Info("t", {1, 1, 1, 1, 1}, 0, 0)}, data),
         "tensor t has 5 dimensions");
  Expect(Tensors({Info("t", {0}, 0, 0)}, data), "dimension 0 of size 0");
  Expect(Tensors({Info("t\x1b[2J", {64}, 0, 0)}, data),
         "tensor name 0 holds a byte that is not printable");
  Expect(
      Tensors({Info("t", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0)}, data),
      "fit in 63 bits");
  Expect(Tensors({Info("t", {65}, 0, 0)}, data), "past the end");
  Expect(Tensors({Info("t", {8}, 0, 8)}, data),
         "not a multiple of the alignment");
  Expect(Tensors({Info("t", {8}, 0, ~uint64_t{0} - 31)}, data), "past the end");
  Expect(Tensors({Info("t", {33}, 8, 0)}, data), "not whole Q8_0 blocks");
  Expect(Tensors({Info("a", {16}, 0, 0), Info("b", {16}, 0, 32)}, data),
         "tensors a and b overlap");
  Expect(Tensors({Info("a", {8}, 0, 0), Info("a", {8}, 0, 32)}, data),
         "tensor a appears twice");
  // A type Joule cannot size is described, not placed: the model loader
  // refuses it by name.
  auto f = ParseBytes(Tensors({Info("k", {256}, 12, 0)}, data));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(gguf::TensorTypeName((*f)->tensors()[0].type), "Q4_K");
}

// ---------------------------------------------------------------- llama

std::string TempPath(const std::string& name) {
  return joule::testing::TempDir() + "/" + name;
}

struct Llama2c {
  std::unique_ptr<Checkpoint> ckpt;
  std::unique_ptr<Tokenizer> tok;
};

Llama2c Stories260K() {
  Llama2c m;
  auto ckpt = Checkpoint::Open(joule::testing::SharedModel("stories260K.bin"));
  EXPECT_TRUE(ckpt.ok()) << ckpt.status();
  m.ckpt = *std::move(ckpt);
  auto tok = Tokenizer::Load(joule::testing::SharedModel("tok512.bin"),
                             m.ckpt->config().vocab_size);
  EXPECT_TRUE(tok.ok()) << tok.status();
  m.tok = *std::move(tok);
  return m;
}

TEST(GgufModelTest, F32ExportReadsBackBitForBit) {
  Llama2c src = Stories260K();
  const std::string path = TempPath("stories260K-f32.gguf");
  ASSERT_TRUE(
      ExportGguf(*src.ckpt, *src.tok, TensorType::kF32, "s", path).ok());
  auto g = Checkpoint::Open(path);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_NE((*g)->gguf(), nullptr);
  EXPECT_EQ((*g)->format(), WeightFormat::kFp32);
  const Config& a = src.ckpt->config();
  const Config& b = (*g)->config();
  EXPECT_EQ(b.DebugString(), a.DebugString());
  auto same = [](const Matrix& x, const Matrix& y) {
    return x.rows == y.rows && x.cols == y.cols &&
           std::memcmp(x.f32, y.f32, x.size() * 4) == 0;
  };
  EXPECT_TRUE(same((*g)->token_embedding(), src.ckpt->token_embedding()));
  for (int l = 0; l < a.n_layers; ++l) {
    const LayerWeights& x = src.ckpt->layer(l);
    const LayerWeights& y = (*g)->layer(l);
    EXPECT_TRUE(same(x.wq, y.wq) && same(x.wk, y.wk) && same(x.wv, y.wv) &&
                same(x.wo, y.wo) && same(x.w1, y.w1) && same(x.w2, y.w2) &&
                same(x.w3, y.w3))
        << "layer " << l;
    EXPECT_EQ(std::memcmp(x.rms_att, y.rms_att, a.dim * 4), 0);
    EXPECT_EQ(std::memcmp(x.rms_ffn, y.rms_ffn, a.dim * 4), 0);
  }
  EXPECT_EQ(std::memcmp(src.ckpt->rms_final(), (*g)->rms_final(), a.dim * 4),
            0);
}

TEST(GgufModelTest, TokenizerFromGgufEncodesAndDecodesAsLlama2c) {
  Llama2c src = Stories260K();
  const std::string path = TempPath("stories260K-tok.gguf");
  ASSERT_TRUE(
      ExportGguf(*src.ckpt, *src.tok, TensorType::kF16, "s", path).ok());
  auto g = Checkpoint::Open(path);
  ASSERT_TRUE(g.ok()) << g.status();
  auto tok = Tokenizer::FromGguf(*(*g)->gguf(), (*g)->config().vocab_size);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_TRUE((*tok)->add_bos());
  for (const char* text :
       {"", "Once upon a time, there was a little girl named Lily.",
        "  two spaces\nand a newline",
        "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80", "\x01\x7f"}) {
    const std::vector<int> want = src.tok->Encode(text, true);
    EXPECT_EQ((*tok)->Encode(text, true), want) << text;
    for (size_t i = 1; i < want.size(); ++i) {
      EXPECT_EQ((*tok)->Decode(want[i - 1], want[i]),
                src.tok->Decode(want[i - 1], want[i]));
    }
  }
}

// A synthetic llama2.c model whose rows are whole 32-value blocks, with
// its own classifier, and stories260K's tokenizer.
Llama2c Synthetic() {
  Config c;
  c.dim = 64;
  c.hidden_dim = 96;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 512;
  c.seq_len = 64;
  c.shared_classifier = false;
  const std::string path = TempPath("synthetic.bin");
  EXPECT_TRUE(WriteCheckpoint(path, c, 0, 0, SyntheticWeights(c, 3)).ok());
  Llama2c m;
  auto ckpt = Checkpoint::Open(path);
  EXPECT_TRUE(ckpt.ok()) << ckpt.status();
  m.ckpt = *std::move(ckpt);
  auto tok = Tokenizer::Load(joule::testing::SharedModel("tok512.bin"), 512);
  EXPECT_TRUE(tok.ok()) << tok.status();
  m.tok = *std::move(tok);
  return m;
}

// Row r of `m`, decoded by ggml's reference from `src`'s row encoded as
// `type`.
std::vector<float> Reference(const Matrix& src, int r, TensorType type) {
  std::vector<float> x(src.cols), y(src.cols);
  src.DequantizeRow(r, x.data());
  std::string blocks;
  if (type == TensorType::kQ8_0) {
    ggml::QuantizeQ8_0(x.data(), src.cols, &blocks);
    ggml::DequantizeQ8_0(reinterpret_cast<const unsigned char*>(blocks.data()),
                         src.cols, y.data());
  } else {
    ggml::QuantizeQ4_0(x.data(), src.cols, &blocks);
    ggml::DequantizeQ4_0(reinterpret_cast<const unsigned char*>(blocks.data()),
                         src.cols, y.data());
  }
  return y;
}

TEST(GgufModelTest, Q8_0AndQ4_0LoadAsGgmlDecodesThem) {
  Llama2c src = Synthetic();
  for (TensorType type : {TensorType::kQ8_0, TensorType::kQ4_0}) {
    SCOPED_TRACE(gguf::TensorTypeName(uint32_t(type)));
    const std::string path = TempPath("synthetic.gguf");
    ASSERT_TRUE(ExportGguf(*src.ckpt, *src.tok, type, "s", path).ok());
    auto g = Checkpoint::Open(path);
    ASSERT_TRUE(g.ok()) << g.status();
    EXPECT_EQ((*g)->format(), type == TensorType::kQ8_0 ? WeightFormat::kQ8_0
                                                        : WeightFormat::kQ4_0);
    EXPECT_EQ((*g)->group_size(), 32);
    EXPECT_FALSE((*g)->config().shared_classifier);
    std::vector<std::pair<const Matrix*, const Matrix*>> pairs = {
        {&src.ckpt->token_embedding(), &(*g)->token_embedding()},
        {&src.ckpt->classifier(), &(*g)->classifier()}};
    for (int l = 0; l < 2; ++l) {
      const LayerWeights& a = src.ckpt->layer(l);
      const LayerWeights& b = (*g)->layer(l);
      for (auto f : {&LayerWeights::wq, &LayerWeights::wk, &LayerWeights::wv,
                     &LayerWeights::wo, &LayerWeights::w1, &LayerWeights::w2,
                     &LayerWeights::w3}) {
        pairs.push_back({&(a.*f), &(b.*f)});
      }
    }
    for (const auto& [a, b] : pairs) {
      ASSERT_EQ(a->rows, b->rows);
      ASSERT_EQ(a->cols, b->cols);
      std::vector<float> got(b->cols);
      for (int r : {0, a->rows / 2, a->rows - 1}) {
        b->DequantizeRow(r, got.data());
        ASSERT_EQ(got, Reference(*a, r, type)) << "row " << r;
      }
    }
  }
}

// Rewrites, in place, the 4-byte type of tensor `name` in a GGUF file.
void SetTensorType(std::string* bytes, const std::string& name, uint32_t type,
                   int dims) {
  const std::string key = U64(name.size()) + name;
  const size_t at = bytes->find(key);
  ASSERT_NE(at, std::string::npos) << name;
  Poke<uint32_t>(bytes, at + key.size() + 4 + 8 * dims, type);
}

// Rewrites a string value of the same length.
void SetString(std::string* bytes, const std::string& key,
               const std::string& from, const std::string& to) {
  ASSERT_EQ(from.size(), to.size());
  const std::string k =
      U64(key.size()) + key + U32(8) + U64(from.size()) + from;
  const size_t at = bytes->find(k);
  ASSERT_NE(at, std::string::npos) << key;
  bytes->replace(at + k.size() - from.size(), to.size(), to);
}

absl::Status OpenBytes(const std::string& bytes) {
  const std::string path = TempPath("patched.gguf");
  std::ofstream(path, std::ios::binary) << bytes;
  auto g = Checkpoint::Open(path);
  if (!g.ok()) return g.status();
  return Tokenizer::FromGguf(*(*g)->gguf(), (*g)->config().vocab_size).status();
}

TEST(GgufModelTest, WhatJouleCannotRunIsRefusedByName) {
  Llama2c src = Synthetic();
  const std::string path = TempPath("synthetic-q8.gguf");
  ASSERT_TRUE(
      ExportGguf(*src.ckpt, *src.tok, TensorType::kQ8_0, "s", path).ok());
  std::ifstream in(path, std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)),
                         std::istreambuf_iterator<char>());
  ASSERT_TRUE(OpenBytes(good).ok()) << OpenBytes(good);

  std::string b = good;
  SetTensorType(&b, "blk.1.ffn_down.weight", 3, 2);  // Q4_1
  EXPECT_THAT(std::string(OpenBytes(b).message()),
              HasSubstr("tensor blk.1.ffn_down.weight has type Q4_1, which "
                        "Joule does not read"));
  b = good;
  SetString(&b, "general.architecture", "llama", "llamb");
  EXPECT_THAT(std::string(OpenBytes(b).message()),
              HasSubstr("architecture 'llamb' is not supported"));
  b = good;
  SetString(&b, "tokenizer.ggml.model", "llama", "gpt-2");
  EXPECT_THAT(std::string(OpenBytes(b).message()),
              HasSubstr("tokenizer model 'gpt-2' is not supported"));
  b = good;
  SetTensorType(&b, "output_norm.weight", 8, 1);  // Q8_0 norm (not 32).
  EXPECT_THAT(std::string(OpenBytes(b).message()),
              HasSubstr("output_norm.weight"));

  // F32 with one matrix relabelled Q8_0 (it fits in fewer bytes).
  const std::string fpath = TempPath("synthetic-f32.gguf");
  ASSERT_TRUE(
      ExportGguf(*src.ckpt, *src.tok, TensorType::kF32, "s", fpath).ok());
  std::ifstream fin(fpath, std::ios::binary);
  b.assign((std::istreambuf_iterator<char>(fin)),
           std::istreambuf_iterator<char>());
  SetTensorType(&b, "blk.0.attn_q.weight", 8, 2);
  EXPECT_THAT(std::string(OpenBytes(b).message()),
              HasSubstr("mix float and quantized"));
}

TEST(GgufModelTest, Q4_0BesideQ8_0IsWidenedExactly) {
  Llama2c src = Synthetic();
  const std::string path = TempPath("synthetic-mixed.gguf");
  ASSERT_TRUE(
      ExportGguf(*src.ckpt, *src.tok, TensorType::kQ8_0, "s", path).ok());
  std::ifstream in(path, std::ios::binary);
  std::string b((std::istreambuf_iterator<char>(in)),
                std::istreambuf_iterator<char>());
  // The Q8_0 blocks read as Q4_0 (18 of every 34 bytes): any bytes decode.
  SetTensorType(&b, "blk.0.ffn_up.weight", 2, 2);
  const std::string patched = TempPath("patched-mixed.gguf");
  std::ofstream(patched, std::ios::binary) << b;
  auto g = Checkpoint::Open(patched);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ((*g)->format(), WeightFormat::kQ8_0);
  const gguf::TensorInfo* t = (*g)->gguf()->FindTensor("blk.0.ffn_up.weight");
  ASSERT_NE(t, nullptr);
  const Matrix& m = (*g)->layer(0).w3;
  std::vector<float> want(m.size()), row(m.cols);
  ggml::DequantizeQ4_0(t->data, m.size(), want.data());
  for (int r = 0; r < m.rows; ++r) {
    m.DequantizeRow(r, row.data());
    // Bit for bit: scales read from Q8_0 bytes may be Inf or NaN.
    ASSERT_EQ(std::memcmp(row.data(), want.data() + int64_t{r} * m.cols,
                          sizeof(float) * m.cols),
              0)
        << "row " << r;
  }
}

}  // namespace
}  // namespace joule::model
