#include "server/text_stream.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace joule::server {
namespace {

// Feeds pieces one at a time; returns what each Append released.
std::vector<std::string> Feed(TextStream& s,
                              const std::vector<std::string>& pieces) {
  std::vector<std::string> out;
  for (const auto& p : pieces) out.push_back(s.Append(p));
  return out;
}

TEST(TextStreamTest, PassesPlainTextThrough) {
  TextStream s({});
  EXPECT_EQ(Feed(s, {"Hello", ",", " world"}),
            (std::vector<std::string>{"Hello", ",", " world"}));
  EXPECT_EQ(s.Flush(), "");
}

TEST(TextStreamTest, NeverSplitsAUtf8Character) {
  TextStream s({});
  // U+20AC (euro) arrives as three byte-fallback tokens.
  EXPECT_EQ(Feed(s, {"a", "\xE2", "\x82", "\xAC", "b"}),
            (std::vector<std::string>{"a", "", "", "\xE2\x82\xAC", "b"}));
  // A 4-byte emoji.
  EXPECT_EQ(Feed(s, {"\xF0\x9F", "\x98", "\x80"}),
            (std::vector<std::string>{"", "", "\xF0\x9F\x98\x80"}));
}

TEST(TextStreamTest, InvalidBytesBecomeReplacementCharacters) {
  TextStream s({});
  EXPECT_EQ(s.Append("\xFF"), "\xEF\xBF\xBD");
  EXPECT_EQ(s.Append("\xE2"
                     "x"),
            "\xEF\xBF\xBDx");  // Broken sequence.
  EXPECT_EQ(s.Append("\xED\xA0\x80"),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // Surrogate.
  EXPECT_EQ(s.Append("\xE2\x82"), "");
  EXPECT_EQ(s.Flush(), "\xEF\xBF\xBD");  // Incomplete at the end.
}

TEST(TextStreamTest, StopSequenceInsideOnePiece) {
  TextStream s({"END"});
  EXPECT_EQ(s.Append("abcENDdef"), "abc");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.matched_stop(), "END");
  EXPECT_EQ(s.Append("more"), "");
  EXPECT_EQ(s.Flush(), "");
}

TEST(TextStreamTest, StopSequenceAcrossPiecesIsHeldBackThenDropped) {
  TextStream s({"Lily"});
  EXPECT_EQ(Feed(s, {"Hi L", "i", "ly!"}),
            (std::vector<std::string>{"Hi ", "", ""}));
  EXPECT_TRUE(s.stopped());
}

TEST(TextStreamTest, HeldTextIsReleasedWhenItStopsMatching) {
  TextStream s({"Lily"});
  EXPECT_EQ(Feed(s, {"Hi L", "i", "on"}),
            (std::vector<std::string>{"Hi ", "", "Lion"}));
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.Append("L"), "");
  EXPECT_EQ(s.Flush(), "L");
}

TEST(TextStreamTest, EarliestOfSeveralStops) {
  TextStream s({"xyz", "\n\n"});
  EXPECT_EQ(s.Append("one\n"), "one");
  EXPECT_EQ(s.Append("\ntwo"), "");
  EXPECT_EQ(s.matched_stop(), "\n\n");
}

// Found by text_stream_fuzzer: both stops arrive in one piece, and the one
// listed first occurs later; the text before the first match is released.
TEST(TextStreamTest, EarliestMatchWinsWithinOnePiece) {
  TextStream s({"Tom", "\n"});
  EXPECT_EQ(s.Append("Lily\nand Tom"), "Lily");
  EXPECT_EQ(s.matched_stop(), "\n");
}

}  // namespace
}  // namespace joule::server
