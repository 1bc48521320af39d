#ifndef JOULE_TESTS_RAW_HTTP_H_
#define JOULE_TESTS_RAW_HTTP_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <optional>
#include <string>

#include "absl/time/clock.h"

namespace joule::testing {

// A loopback TCP connection for raw HTTP.
class RawSocket {
 public:
  explicit RawSocket(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ =
        ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{0, 100 * 1000};  // Reads poll, so a test can bound its wait.
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~RawSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  void Send(const std::string& s) { (void)!::send(fd_, s.data(), s.size(), 0); }
  // Reads until `done` holds for what has arrived, the peer closes, or
  // `timeout` passes; returns what arrived.
  std::string ReadUntil(const std::function<bool(const std::string&)>& done,
                        absl::Duration timeout) {
    std::string out;
    const absl::Time end = absl::Now() + timeout;
    char buf[4096];
    while (absl::Now() < end && !done(out)) {
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n == 0) break;
      if (n > 0) out.append(buf, n);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) break;
    }
    return out;
  }
  void Close() {
    ::close(fd_);
    fd_ = -1;
  }
  // Reads until the peer closes or `timeout` passes. nullopt: still open.
  std::optional<std::string> ReadToClose(absl::Duration timeout) {
    std::string out;
    const absl::Time end = absl::Now() + timeout;
    char buf[4096];
    while (absl::Now() < end) {
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n == 0) return out;
      if (n > 0) out.append(buf, n);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return out;
    }
    return std::nullopt;
  }

 private:
  int fd_;
  bool connected_ = false;
};

inline std::optional<std::string> Scrape(int port, absl::Duration timeout) {
  RawSocket s(port);
  if (!s.connected()) return std::nullopt;
  s.Send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  return s.ReadToClose(timeout);
}

}  // namespace joule::testing

#endif  // JOULE_TESTS_RAW_HTTP_H_
