// API keys (server/auth.h): loading, the header check and its messages.
#include "server/auth.h"

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_paths.h"

namespace joule::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ApiKeysTest, NoKeysLetsEveryoneIn) {
  ApiKeys keys;
  EXPECT_FALSE(keys.enabled());
  EXPECT_TRUE(keys.Check(std::nullopt).ok());
  EXPECT_TRUE(keys.Check("Bearer anything").ok());
}

TEST(ApiKeysTest, LoadsListAndFileSkippingCommentsAndBlankLines) {
  const std::string file = WriteFile(
      "keys.txt", "# operators\n\n  file-key-1  \n#not-a-key\nfile-key-2\n");
  auto keys = ApiKeys::Load(" list-a , list-b,", file);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 4);
  for (const char* k : {"list-a", "list-b", "file-key-1", "file-key-2"}) {
    EXPECT_TRUE(keys->Check(std::string("Bearer ") + k).ok()) << k;
  }
  EXPECT_FALSE(keys->Check("Bearer #not-a-key").ok());
  EXPECT_FALSE(keys->Check("Bearer operators").ok());
}

TEST(ApiKeysTest, FileErrorsAreNamed) {
  auto missing = ApiKeys::Load("", testing::TempDir() + "/no-such-file");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("cannot read"));
  EXPECT_THAT(missing.status().message(), HasSubstr("no-such-file"));

  auto empty = ApiKeys::Load("", WriteFile("empty.txt", "# none yet\n\n"));
  EXPECT_THAT(empty.status().message(), HasSubstr("holds no key"));

  auto spaced = ApiKeys::Load("", WriteFile("spaced.txt", "two words\n"));
  EXPECT_THAT(spaced.status().message(), HasSubstr("space"));
  EXPECT_THAT(spaced.status().message(), Not(HasSubstr("two words")));
}

TEST(ApiKeysTest, MissingMalformedAndWrongHeadersAreUnauthenticated) {
  auto keys = ApiKeys::FromList({"s3cret-key"});
  ASSERT_TRUE(keys.ok());
  const struct {
    std::optional<absl::string_view> header;
    const char* message;
  } cases[] = {
      {std::nullopt, "missing API key"},
      {"s3cret-key", "must be 'Bearer <key>'"},
      {"Basic s3cret-key", "must be 'Bearer <key>'"},
      {"Bearer ", "must be 'Bearer <key>'"},
      {"Bearer s3cret-keyX", "invalid API key"},
      {"Bearer s3cret-ke", "invalid API key"},
      {"Bearer S3CRET-KEY", "invalid API key"},
  };
  for (const auto& c : cases) {
    absl::Status s = keys->Check(c.header);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated)
        << c.header.value_or("(none)");
    EXPECT_THAT(s.message(), HasSubstr(c.message));
    EXPECT_THAT(s.message(), Not(HasSubstr("s3cret")));  // Never echoed.
  }
  EXPECT_TRUE(keys->Check("Bearer s3cret-key").ok());
  EXPECT_TRUE(keys->Check("bearer   s3cret-key ").ok());  // Scheme any case.
}

TEST(ConstantTimeEqualsTest, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcabc"));  // Wraps, still differs.
  EXPECT_FALSE(ConstantTimeEquals("abc", ""));
}

TEST(IsLoopbackHostTest, KnowsLoopbackFromTheRest) {
  for (const char* h : {"127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST",
                        "::1", "[::1]", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackHost(h)) << h;
  }
  for (const char* h : {"0.0.0.0", "::", "[::]", "10.0.0.1", "192.168.1.5",
                        "example.com", "", "128.0.0.1"}) {
    EXPECT_FALSE(IsLoopbackHost(h)) << h;
  }
}

}  // namespace
}  // namespace joule::server
