#ifndef JOULE_SERVER_HTTP_CONNECTION_H_
#define JOULE_SERVER_HTTP_CONNECTION_H_

// How the HTTP port reads from and writes to one client connection, in
// place of cpp-httplib's own. Debian's cpp-httplib 0.11 reads a request
// header line of any length into memory (a client sending 1 GiB without a
// newline grew the server by 1 GiB) and restarts its read timeout at every
// byte; here a request's head and body each have a byte budget and a
// deadline, whatever the client does. TLS (OpenSSL) is handled here too, so
// both transports get the same bounds.

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>

#include "absl/time/time.h"
#include "httplib.h"

namespace joule::server {

struct ConnectionLimits {
  // Request line and headers, together.
  size_t max_head_bytes = 64 * 1024;
  // The body as sent (chunked framing included); httplib's own
  // payload_max_length refuses larger declared bodies with 413 first.
  size_t max_body_bytes = (1 << 20) + 64 * 1024;
  // The head must arrive whole within this from its first byte, and the
  // body within this after the head.
  absl::Duration request_timeout = absl::Seconds(10);
  // A write that cannot proceed for this long fails.
  absl::Duration write_timeout = absl::Seconds(30);
  // An idle connection between requests is closed after this.
  absl::Duration keep_alive_timeout = absl::Seconds(5);
  int keep_alive_max_requests = 100;
};

// httplib::Server whose connections run through BoundedStream. With `tls`
// (owned; null for plaintext) each connection first completes a TLS
// handshake within request_timeout.
class BoundedServer : public httplib::Server {
 public:
  BoundedServer(ConnectionLimits limits, SSL_CTX* tls);
  ~BoundedServer() override;

  // httplib listens with a backlog of 5: 16 clients connecting at once had
  // connections dropped (retried a second later) or reset. Call after
  // binding.
  void WidenBacklog();

 private:
  bool process_and_close_socket(socket_t sock) override;

  const ConnectionLimits limits_;
  SSL_CTX* const tls_;
};

}  // namespace joule::server

#endif  // JOULE_SERVER_HTTP_CONNECTION_H_
