#include "device/riscv/sim/token.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace joule::riscv {

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot read token file '", path, "': ", std::strerror(errno)));
  }
  // One byte more than a token's limit, plus room for trailing whitespace,
  // tells a long file from a long token.
  std::string text;
  char buf[4096];
  ssize_t n = 0;
  while (
      text.size() <= 2 * kMaxTokenBytes &&
      ((n = ::read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))) {
    if (n > 0) text.append(buf, n);
  }
  const int read_errno = errno;
  ::close(fd);
  if (n < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot read token file '", path, "': ", std::strerror(read_errno)));
  }
  const absl::string_view token = absl::StripTrailingAsciiWhitespace(text);
  if (token.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("token file '", path, "' is empty"));
  }
  if (token.size() > kMaxTokenBytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "token file '", path, "' holds more than ", kMaxTokenBytes, " bytes"));
  }
  return std::string(token);
}

absl::StatusOr<std::string> NewToken() {
  char bytes[32];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    const ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::UnavailableError(
          absl::StrCat("getrandom failed: ", std::strerror(errno)));
    }
    got += n;
  }
  return absl::BytesToHexString(absl::string_view(bytes, sizeof(bytes)));
}

absl::Status WriteTokenFile(const std::string& path, absl::string_view token) {
  // O_EXCL: never follow or reuse a file someone else put there.
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot create token file '", path, "': ", std::strerror(errno)));
  }
  size_t off = 0;
  while (off < token.size()) {
    const ssize_t n = ::write(fd, token.data() + off, token.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int write_errno = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return absl::UnavailableError(
          absl::StrCat("cannot write token file '", path,
                       "': ", std::strerror(write_errno)));
    }
    off += n;
  }
  ::close(fd);
  return absl::OkStatus();
}

bool TokenMatches(absl::string_view expected, absl::string_view presented) {
  // Every byte of `expected` is compared (against 0 past the end of
  // `presented`), and differences are ORed, never branched on.
  unsigned char diff = expected.size() != presented.size() ? 1 : 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char p =
        i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
    diff |= static_cast<unsigned char>(expected[i]) ^ p;
  }
  // Keeps the compiler from turning the loop into an early-exit compare.
  asm volatile("" : "+r"(diff));
  return diff == 0;
}

}  // namespace joule::riscv
