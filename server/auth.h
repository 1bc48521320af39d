#ifndef JOULE_SERVER_AUTH_H_
#define JOULE_SERVER_AUTH_H_

// API keys, independent of the transport: gRPC handlers pass the value of
// their `authorization` metadata, a future HTTP port would pass its
// `Authorization` header.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace joule::server {

class ApiKeys {
 public:
  // No keys: every caller is allowed.
  ApiKeys() = default;

  // Keys from a comma-separated list and/or a file with one key per line
  // (blank lines and lines starting with '#' are ignored). Surrounding
  // whitespace is trimmed. Either may be empty. A named file that cannot be
  // read or holds no key is an error, as is a key with whitespace or
  // control characters in it (it could never match a header).
  static absl::StatusOr<ApiKeys> Load(absl::string_view comma_separated,
                                      const std::string& file);
  // For tests and embedders.
  static absl::StatusOr<ApiKeys> FromList(std::vector<std::string> keys);

  bool enabled() const { return !keys_.empty(); }
  int size() const { return static_cast<int>(keys_.size()); }

  // Checks an `authorization` header value ("Bearer <key>"; nullopt when
  // the header is absent). OK when keys are off. Errors are
  // UNAUTHENTICATED and never contain the presented key.
  absl::Status Check(std::optional<absl::string_view> authorization) const;

 private:
  explicit ApiKeys(std::vector<std::string> keys) : keys_(std::move(keys)) {}
  // True if `presented` equals one of the keys. Takes time that depends on
  // the number of keys and the presented length, not on where a key and
  // the presented value first differ, nor on which key matched.
  bool Matches(absl::string_view presented) const;

  std::vector<std::string> keys_;
};

// Compares in time that depends only on `presented`'s length, never on
// the contents of either string. `secret` must not be empty.
bool ConstantTimeEquals(absl::string_view secret, absl::string_view presented);

// True for addresses only this machine can reach: localhost, 127.0.0.0/8
// and ::1 (with or without brackets).
bool IsLoopbackHost(absl::string_view host);

}  // namespace joule::server

#endif  // JOULE_SERVER_AUTH_H_
