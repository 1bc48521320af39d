#include "model/tokenizer.h"

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_paths.h"

namespace joule::model {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TokenizerTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const std::string name = GetParam();
    auto tok = Tokenizer::Load(joule::testing::SharedModel(name),
                               name == std::string("tok512.bin") ? 512 : 32000);
    ASSERT_TRUE(tok.ok()) << tok.status();
    tok_ = *std::move(tok);
  }

  std::string DecodeAll(const std::vector<int>& tokens) {
    std::string out;
    for (size_t i = 1; i < tokens.size(); ++i) {
      out += std::string(tok_->Decode(tokens[i - 1], tokens[i]));
    }
    return out;
  }

  std::unique_ptr<Tokenizer> tok_;
};

TEST_P(TokenizerTest, EmptyTextIsJustBos) {
  EXPECT_THAT(tok_->Encode("", true), ElementsAre(Tokenizer::kBos));
  EXPECT_TRUE(tok_->Encode("", false).empty());
}

TEST_P(TokenizerTest, RoundTripsAscii) {
  for (const char* text :
       {"Once upon a time", "Hello, world!", "  two  spaces ", "a\nb\tc",
        "1234567890 !@#$%^&*()", "x"}) {
    std::vector<int> t = tok_->Encode(text, true);
    ASSERT_EQ(t[0], Tokenizer::kBos);
    // The dummy-prefix space is dropped after BOS when decoding.
    EXPECT_EQ(DecodeAll(t), text) << text;
  }
}

TEST_P(TokenizerTest, RoundTripsMultiByteUtf8) {
  for (const char* text :
       {"caf\u00e9 na\u00efve", "\u65e5\u672c\u8a9e",
        "emoji \U0001F600 and \u20ac", "\u0416\u0438\u0437\u043d\u044c"}) {
    EXPECT_EQ(DecodeAll(tok_->Encode(text, true)), text) << text;
  }
}

TEST_P(TokenizerTest, MergesReduceTokenCount) {
  const std::string text = "Once upon a time there was a little girl";
  std::vector<int> t = tok_->Encode(text, true);
  // BOS + at least one token, far fewer than one per byte.
  EXPECT_LT(t.size(), text.size() / 2);
}

TEST_P(TokenizerTest, ByteFallbackDecodesRawBytes) {
  // Tokens 3..258 are <0x00>..<0xFF>; they decode to single raw bytes.
  EXPECT_EQ(tok_->Decode(5, 3 + 0x41), "A");
  EXPECT_EQ(tok_->Decode(5, 3 + 0xE2), "\xE2");
  EXPECT_EQ(tok_->piece(3 + 0xE2), "<0xE2>");
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, TokenizerTest,
                         ::testing::Values("tok512.bin", "tokenizer.bin"));

TEST(TokenizerTok512Test, UnknownCharacterFallsBackToBytes) {
  auto tok = Tokenizer::Load(joule::testing::SharedModel("tok512.bin"), 512);
  ASSERT_TRUE(tok.ok());
  // A CJK character is not among 512 pieces: three byte tokens.
  std::vector<int> t = (*tok)->Encode("\u65e5", false);
  ASSERT_GE(t.size(), 3u);
  EXPECT_THAT(std::vector<int>(t.end() - 3, t.end()),
              ElementsAre(3 + 0xE6, 3 + 0x97, 3 + 0xA5));
}

TEST(TokenizerTok512Test, BosStripsLeadingSpaceOnlyAfterBos) {
  auto tok = Tokenizer::Load(joule::testing::SharedModel("tok512.bin"), 512);
  ASSERT_TRUE(tok.ok());
  std::vector<int> t = (*tok)->Encode("hello", false);
  ASSERT_FALSE(t.empty());
  const std::string piece = (*tok)->piece(t[0]);
  ASSERT_EQ(piece[0], ' ');
  EXPECT_EQ((*tok)->Decode(Tokenizer::kBos, t[0]), piece.substr(1));
  EXPECT_EQ((*tok)->Decode(100, t[0]), piece);
}

TEST(TokenizerLoadTest, WrongVocabularySizeIsAnError) {
  auto tok = Tokenizer::Load(joule::testing::SharedModel("tok512.bin"), 32000);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr("512 tokens"));
  auto tok2 =
      Tokenizer::Load(joule::testing::SharedModel("tokenizer.bin"), 512);
  ASSERT_FALSE(tok2.ok());
  EXPECT_THAT(std::string(tok2.status().message()), HasSubstr("more tokens"));
}

TEST(TokenizerLoadTest, TruncatedFileIsAnError) {
  std::FILE* in =
      std::fopen(joule::testing::SharedModel("tok512.bin").c_str(), "rb");
  ASSERT_NE(in, nullptr);
  std::string data(4000, '\0');
  data.resize(std::fread(data.data(), 1, data.size(), in));
  std::fclose(in);
  const std::string path = joule::testing::TempDir() + "/short_tok.bin";
  std::FILE* out = std::fopen(path.c_str(), "wb");
  std::fwrite(data.data(), 1, data.size(), out);
  std::fclose(out);
  auto tok = Tokenizer::Load(path, 512);
  EXPECT_FALSE(tok.ok());
}

TEST(TokenizerLoadTest, MissingFileIsNotFound) {
  auto tok = Tokenizer::Load("/nonexistent/tok.bin", 512);
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace joule::model

namespace joule::model {
namespace {

// llama2.c's merge loop verbatim in spirit: rescan all pairs, merge the
// best (leftmost on ties), repeat. The oracle for the heap-based encoder.
std::vector<int> NaiveMerge(const Tokenizer& tok, std::vector<int> tokens,
                            const std::vector<float>& scores,
                            const absl::flat_hash_map<std::string, int>& ids) {
  while (true) {
    float best = -1e10f;
    int best_id = -1, best_idx = -1;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      auto it = ids.find(tok.piece(tokens[i]) + tok.piece(tokens[i + 1]));
      if (it != ids.end() && scores[it->second] > best) {
        best = scores[it->second];
        best_id = it->second;
        best_idx = static_cast<int>(i);
      }
    }
    if (best_idx < 0) return tokens;
    tokens[best_idx] = best_id;
    tokens.erase(tokens.begin() + best_idx + 1);
  }
}

TEST(TokenizerMergeTest, HeapEncoderMatchesLlama2cMergeLoop) {
  for (int vocab : {512, 32000}) {
    auto tok =
        Tokenizer::Load(joule::testing::SharedModel(
                            vocab == 512 ? "tok512.bin" : "tokenizer.bin"),
                        vocab);
    ASSERT_TRUE(tok.ok());
    // Scores come back from the file through a second reader.
    std::FILE* f = std::fopen(joule::testing::SharedModel(
                                  vocab == 512 ? "tok512.bin" : "tokenizer.bin")
                                  .c_str(),
                              "rb");
    int32_t max_len;
    ASSERT_EQ(std::fread(&max_len, 4, 1, f), 1u);
    std::vector<float> scores(vocab);
    absl::flat_hash_map<std::string, int> ids;
    for (int i = 0; i < vocab; ++i) {
      int32_t len;
      ASSERT_EQ(std::fread(&scores[i], 4, 1, f), 1u);
      ASSERT_EQ(std::fread(&len, 4, 1, f), 1u);
      std::string piece(len, '\0');
      ASSERT_EQ(std::fread(piece.data(), 1, len, f), static_cast<size_t>(len));
      ids.emplace(piece, i);
    }
    std::fclose(f);
    std::mt19937 rng(vocab);
    const std::string alphabet = "aeioulnrst hdmy.,'\"\n!?THEOSL";
    for (int trial = 0; trial < 200; ++trial) {
      std::string text;
      const int len = 1 + rng() % 120;
      for (int i = 0; i < len; ++i) text += alphabet[rng() % alphabet.size()];
      if (trial % 10 == 0) text += "\u00e9\u65e5";
      // Unmerged start: BOS, dummy space, one token per character/byte.
      std::vector<int> start = {Tokenizer::kBos, ids.at(" ")};
      for (size_t i = 0; i < text.size();) {
        size_t n = 1;
        while (i + n < text.size() && n < 4 &&
               (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80)
          ++n;
        auto it = ids.find(text.substr(i, n));
        if (it != ids.end()) {
          start.push_back(it->second);
        } else {
          for (size_t b = 0; b < n; ++b)
            start.push_back(static_cast<unsigned char>(text[i + b]) + 3);
        }
        i += n;
      }
      ASSERT_EQ((*tok)->Encode(text, true),
                NaiveMerge(**tok, start, scores, ids))
          << "vocab " << vocab << " text: " << text;
    }
  }
}

}  // namespace
}  // namespace joule::model
