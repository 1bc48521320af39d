#include "server/http_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "absl/time/clock.h"

namespace joule::server {
namespace {

// Waits until `fd` has `events` (or an error to report), or `timeout`.
bool Poll(int fd, short events, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (true) {
    const int64_t ms = std::max<int64_t>(
        0, absl::ToInt64Milliseconds(end - absl::Now()));
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 1 << 30)));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

void SetTimeout(int fd, int option, absl::Duration d) {
  const timeval tv = absl::ToTimeval(d);
  ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv));
}

void Address(const sockaddr_storage& addr, std::string& ip, int& port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
    port = ntohs(a->sin6_port);
  }
  ip = buf;
}

// One connection's bytes, with a budget and a deadline per request part.
class BoundedStream : public httplib::Stream {
 public:
  BoundedStream(int fd, SSL* ssl, const ConnectionLimits& limits)
      : fd_(fd), ssl_(ssl), limits_(limits) {}

  // Waits for the next request's first byte.
  bool WaitForRequest(absl::Duration timeout,
                      const httplib::Server& server) const {
    const absl::Time end = absl::Now() + timeout;
    while (server.is_running()) {
      if (Buffered()) return true;
      const absl::Duration left = end - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      // Slices, so that a stopping server is noticed.
      if (Poll(fd_, POLLIN, std::min(left, absl::Milliseconds(100)))) {
        return true;
      }
    }
    return false;
  }

  // A new request begins: its head's budget and deadline start now. Bytes
  // already buffered (a pipelined request) count towards it.
  void NextRequest() {
    in_head_ = true;
    used_ = 0;
    match_ = 0;
    deadline_ = absl::Now() + limits_.request_timeout;
    Account(buf_ + begin_, end_ - begin_);
  }

  bool is_readable() const override {
    return Buffered() || Poll(fd_, POLLIN, deadline_ - absl::Now());
  }
  bool is_writable() const override {
    return Poll(fd_, POLLOUT, limits_.write_timeout);
  }

  ssize_t read(char* ptr, size_t size) override {
    if (begin_ == end_ && !Fill()) return -1;
    if (begin_ == end_) return 0;  // The peer closed.
    const size_t n = std::min(size, end_ - begin_);
    std::copy(buf_ + begin_, buf_ + begin_ + n, ptr);
    begin_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    if (ssl_ != nullptr) {
      const int n = SSL_write(ssl_, ptr, static_cast<int>(
                                             std::min<size_t>(size, 1 << 30)));
      return n > 0 ? n : -1;
    }
    const ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
    return n >= 0 ? n : -1;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      Address(addr, ip, port);
    }
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      Address(addr, ip, port);
    }
  }
  socket_t socket() const override { return fd_; }

 private:
  bool Buffered() const {
    return begin_ < end_ || (ssl_ != nullptr && SSL_pending(ssl_) > 0);
  }

  // Receives into the empty buffer within the current part's budget and
  // deadline. False: over budget, past the deadline, or a socket error.
  bool Fill() {
    const size_t budget =
        in_head_ ? limits_.max_head_bytes : limits_.max_body_bytes;
    if (used_ >= budget) return false;
    const size_t want = std::min(sizeof(buf_), budget - used_);
    const bool ready = ssl_ != nullptr && SSL_pending(ssl_) > 0;
    if (!ready && !Poll(fd_, POLLIN, deadline_ - absl::Now())) return false;
    // The socket's receive timeout bounds a TLS record that arrives
    // partly.
    const ssize_t n =
        ssl_ != nullptr ? SSL_read(ssl_, buf_, static_cast<int>(want))
                        : ::recv(fd_, buf_, want, 0);
    if (ssl_ != nullptr && n <= 0) {
      begin_ = end_ = 0;  // A clean close reads as the end of the stream.
      return SSL_get_error(ssl_, static_cast<int>(n)) == SSL_ERROR_ZERO_RETURN;
    }
    if (n < 0) return false;
    begin_ = 0;
    end_ = static_cast<size_t>(n);
    Account(buf_, end_);
    return true;
  }

  // Counts received bytes against the current part, and finds where the
  // head ends (the first blank line).
  void Account(const char* data, size_t n) {
    static constexpr char kEnd[] = "\r\n\r\n";
    for (size_t i = 0; i < n && in_head_; ++i) {
      match_ = data[i] == kEnd[match_] ? match_ + 1 : (data[i] == '\r' ? 1 : 0);
      if (match_ == 4) {
        in_head_ = false;
        used_ = n - i - 1;
        deadline_ = absl::Now() + limits_.request_timeout;
        return;
      }
    }
    if (in_head_) used_ += n;
  }

  const int fd_;
  SSL* const ssl_;
  const ConnectionLimits& limits_;
  char buf_[4096];
  size_t begin_ = 0;
  size_t end_ = 0;
  bool in_head_ = true;
  size_t used_ = 0;
  int match_ = 0;
  absl::Time deadline_ = absl::InfiniteFuture();
};

}  // namespace

BoundedServer::BoundedServer(ConnectionLimits limits, SSL_CTX* tls)
    : limits_(limits), tls_(tls) {}

BoundedServer::~BoundedServer() {
  if (tls_ != nullptr) SSL_CTX_free(tls_);
}

void BoundedServer::WidenBacklog() {
  // Linux takes a second listen() on a listening socket as a new backlog.
  ::listen(svr_sock_, SOMAXCONN);
}

bool BoundedServer::process_and_close_socket(socket_t sock) {
  // Without it an event written right after the headers waited ~40 ms for
  // their ACK (Nagle with delayed ACKs): the first token of every stream.
  const int one = 1;
  ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  // Blocking calls (the TLS handshake, a TLS record arriving in pieces, a
  // write to a client that reads nothing) give up after these.
  SetTimeout(sock, SO_RCVTIMEO, limits_.request_timeout);
  SetTimeout(sock, SO_SNDTIMEO, limits_.write_timeout);
  SSL* ssl = nullptr;
  bool ok = true;
  if (tls_ != nullptr) {
    ssl = SSL_new(tls_);
    ok = ssl != nullptr && SSL_set_fd(ssl, sock) == 1 &&
         Poll(sock, POLLIN, limits_.request_timeout) && SSL_accept(ssl) == 1;
  }
  if (ok) {
    BoundedStream stream(sock, ssl, limits_);
    bool closed = false;
    for (int i = 0; ok && !closed && i < limits_.keep_alive_max_requests;
         ++i) {
      const absl::Duration wait =
          i == 0 ? limits_.request_timeout : limits_.keep_alive_timeout;
      if (!stream.WaitForRequest(wait, *this)) break;
      stream.NextRequest();
      const bool last = i + 1 == limits_.keep_alive_max_requests;
      ok = process_request(stream, last, closed, [](httplib::Request&) {});
    }
  }
  if (ssl != nullptr) {
    if (ok) SSL_shutdown(ssl);  // Sends close_notify; does not wait.
    SSL_free(ssl);
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ok;
}

}  // namespace joule::server
