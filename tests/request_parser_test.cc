#include "proto/request_parser.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/joule.pb.h"

namespace joule::v1 {
namespace {

using ::testing::HasSubstr;

TEST(Utf8Test, AcceptsWellFormedText) {
  for (const char* s : {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac 5",
                        "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"}) {
    EXPECT_EQ(FirstInvalidUtf8(s), absl::string_view::npos) << s;
  }
}

TEST(Utf8Test, FindsTheFirstBadByte) {
  struct Case {
    std::string text;
    size_t offset;
  };
  for (const Case& c : std::vector<Case>{
           {"ab\xff", 2},                 // Never valid.
           {"a\xc3", 1},                  // Truncated.
           {"\xc0\xaf", 0},               // Overlong '/'.
           {"\xe0\x80\xaf", 0},           // Overlong, three bytes.
           {"x\xed\xa0\x80", 1},          // A UTF-16 surrogate.
           {"\xf4\x90\x80\x80", 0},       // Above U+10FFFF.
           {"ok\x80", 2},                 // A lone continuation byte.
           {"\xe2\x82", 0},               // Truncated at the end.
       }) {
    EXPECT_EQ(FirstInvalidUtf8(c.text), c.offset) << c.text;
  }
}

TEST(ParseGenerateRequestTest, RoundTripsAValidRequest) {
  GenerateRequest in;
  in.set_prompt("Once upon a time \xe2\x80\x94");
  in.set_max_tokens(7);
  in.add_stop("\n\n");
  in.set_request_id("abc");
  GenerateRequest out;
  ASSERT_TRUE(ParseGenerateRequest(in.SerializeAsString(), &out).ok());
  EXPECT_EQ(out.prompt(), in.prompt());
  EXPECT_EQ(out.max_tokens(), 7);
  EXPECT_EQ(out.stop(0), "\n\n");
}

// Builds the wire bytes by hand: protobuf refuses to serialize some of these.
std::string Field(int number, const std::string& bytes) {
  std::string out;
  out.push_back(static_cast<char>((number << 3) | 2));
  out.push_back(static_cast<char>(bytes.size()));
  return out + bytes;
}

TEST(ParseGenerateRequestTest, NamesTheFieldWithBadUtf8) {
  GenerateRequest out;
  absl::Status s = ParseGenerateRequest(Field(1, "Once \xff"), &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("prompt is not valid UTF-8 (byte 5"));

  s = ParseGenerateRequest(Field(7, "fine") + Field(7, "\xc3"), &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("stop[1] is not valid UTF-8"));

  s = ParseGenerateRequest(Field(11, "\xed\xa0\x80"), &out);
  EXPECT_THAT(s.message(), HasSubstr("request_id is not valid UTF-8"));
  s = ParseGenerateRequest(Field(9, "\x80"), &out);
  EXPECT_THAT(s.message(), HasSubstr("device is not valid UTF-8"));
}

TEST(ParseGenerateRequestTest, MalformedBytesAreInvalidArgument) {
  GenerateRequest out;
  for (const std::string& bytes :
       {std::string("\x0a\x05" "ab", 4),  // Length past the end.
        std::string("\x0a\xff\xff\xff\xff\x0f", 6),  // Huge length.
        std::string("\x08", 1),            // A varint field with no value.
        std::string("\x00", 1),            // Tag 0.
        std::string("\x0c", 1)}) {         // END_GROUP at the top level.
    absl::Status s = ParseGenerateRequest(bytes, &out);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("not a well-formed"));
  }
}

TEST(ParseGenerateRequestTest, UnknownFieldsAndWrongWireTypesParse) {
  GenerateRequest out;
  // Field 99 (unknown) and field 1 sent as a varint: protobuf keeps both as
  // unknown fields, as any proto3 reader would.
  std::string bytes = "\x98\x06\x01" "\x08\x05";
  EXPECT_TRUE(ParseGenerateRequest(bytes, &out).ok());
  EXPECT_EQ(out.prompt(), "");
}

}  // namespace
}  // namespace joule::v1
