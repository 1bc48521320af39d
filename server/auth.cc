#include "server/auth.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace joule::server {
namespace {

// Printable ASCII without spaces: anything else could not arrive intact
// in a header, so such a key is a configuration mistake.
absl::Status ValidateKey(absl::string_view key, absl::string_view where) {
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrCat(
          "an API key in ", where,
          " has a space or a non-printable character; keys are printable "
          "ASCII without spaces"));
    }
  }
  return absl::OkStatus();
}

absl::Status AddKeysFromFile(const std::string& path,
                             std::vector<std::string>* keys) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot read the API key file ", path, ": ", std::strerror(errno)));
  }
  const size_t before = keys->size();
  for (std::string line; std::getline(in, line);) {
    absl::string_view key = absl::StripAsciiWhitespace(line);
    if (key.empty() || key[0] == '#') continue;
    if (absl::Status s = ValidateKey(key, path); !s.ok()) return s;
    keys->emplace_back(key);
  }
  if (in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the API key file ", path));
  }
  if (keys->size() == before) {
    // An empty file would otherwise silently leave the server open.
    return absl::InvalidArgumentError(
        absl::StrCat("the API key file ", path, " holds no key"));
  }
  return absl::OkStatus();
}

}  // namespace

bool ConstantTimeEquals(absl::string_view secret, absl::string_view presented) {
  // The loop runs over the presented value, which the caller already
  // knows, and reads the secret modulo its length: no branch or memory
  // access depends on the secret.
  unsigned diff = secret.size() != presented.size();
  for (size_t i = 0; i < presented.size(); ++i) {
    diff |= static_cast<unsigned char>(secret[i % secret.size()] ^
                                       presented[i]);
  }
  return diff == 0;
}

absl::StatusOr<ApiKeys> ApiKeys::FromList(std::vector<std::string> keys) {
  for (const std::string& k : keys) {
    if (k.empty()) return absl::InvalidArgumentError("an API key is empty");
    if (absl::Status s = ValidateKey(k, "the list"); !s.ok()) return s;
  }
  return ApiKeys(std::move(keys));
}

absl::StatusOr<ApiKeys> ApiKeys::Load(absl::string_view comma_separated,
                                      const std::string& file) {
  std::vector<std::string> keys;
  for (absl::string_view k :
       absl::StrSplit(comma_separated, ',', absl::SkipWhitespace())) {
    k = absl::StripAsciiWhitespace(k);
    if (absl::Status s = ValidateKey(k, "--api_key"); !s.ok()) return s;
    keys.emplace_back(k);
  }
  if (!file.empty()) {
    if (absl::Status s = AddKeysFromFile(file, &keys); !s.ok()) return s;
  }
  return ApiKeys(std::move(keys));
}

bool ApiKeys::Matches(absl::string_view presented) const {
  // Every key is compared, with no early exit on a match.
  unsigned found = 0;
  for (const std::string& key : keys_) {
    found |= static_cast<unsigned>(ConstantTimeEquals(key, presented));
  }
  return found != 0;
}

absl::Status ApiKeys::Check(
    std::optional<absl::string_view> authorization) const {
  if (!enabled()) return absl::OkStatus();
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError(
        "missing API key: send the header 'authorization: Bearer <key>'");
  }
  absl::string_view value = absl::StripAsciiWhitespace(*authorization);
  // The scheme is case-insensitive (RFC 7235); the key is not.
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() ||
      !absl::StartsWithIgnoreCase(value, kScheme)) {
    return absl::UnauthenticatedError(
        "the authorization header must be 'Bearer <key>'");
  }
  value.remove_prefix(kScheme.size());
  value = absl::StripLeadingAsciiWhitespace(value);
  if (!Matches(value)) return absl::UnauthenticatedError("invalid API key");
  return absl::OkStatus();
}

bool IsLoopbackHost(absl::string_view host) {
  absl::ConsumePrefix(&host, "[");
  absl::ConsumeSuffix(&host, "]");
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  const std::string h(host);
  in_addr v4;
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace joule::server
