#ifndef JOULE_SERVER_HTTP_SERVER_H_
#define JOULE_SERVER_HTTP_SERVER_H_

// The OpenAI-compatible HTTP port (cpp-httplib): routing, API keys, TLS,
// limits on slow and hostile clients, and the `api="http"` metrics. The
// endpoints' logic is OpenAiApi's.

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/auth.h"
#include "server/openai_api.h"
#include "server/transport_security.h"
#include "telemetry/metrics.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace joule::server {

struct HttpOptions {
  std::string host = "0.0.0.0";
  // 0 picks a free port; -1 (the default here; joule_server's --http_port
  // defaults to 8000) turns HTTP off.
  int port = -1;
  // Worker threads; each holds one connection while it is open.
  int threads = 128;
  // Generations (completion calls) running at once; more get 429. Below
  // `threads`, so /health and refusals always find a thread.
  int max_generations = 96;
  size_t max_body_bytes = 1 << 20;
  // A request whose bytes stop arriving for this long is dropped.
  absl::Duration read_timeout = absl::Seconds(10);
  // A stream whose client reads nothing for this long is cancelled and its
  // sequences freed.
  absl::Duration write_timeout = absl::Seconds(30);
  // An idle keep-alive connection is closed after this.
  absl::Duration keep_alive_timeout = absl::Seconds(5);
};

class HttpServer {
 public:
  // `api`, `keys` and `metrics` (may be null) must outlive the server.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const HttpOptions& options, OpenAiApi* api, const ApiKeys* keys,
      const std::optional<TlsConfig>& tls, telemetry::Metrics* metrics);
  ~HttpServer();

  int port() const { return port_; }

  // From now on /health answers 503 "draining" while generations are
  // still served: load balancers that poll it stop sending first.
  void StopReportingReady() { not_ready_.store(true); }
  // From now on /health and new generations answer 503.
  void StartDraining() {
    not_ready_.store(true);
    draining_.store(true);
  }
  // Returns once no generation runs, or at `deadline`.
  void WaitForGenerations(absl::Time deadline);
  // Closes the port and joins its threads. Idempotent.
  void Stop();

 private:
  HttpServer(const HttpOptions& options, OpenAiApi* api, const ApiKeys* keys,
             telemetry::Metrics* metrics);
  class Slot;
  void Routes();
  void Health(httplib::Response& res) const;
  void Generate(Endpoint endpoint, const httplib::Request& req,
                httplib::Response& res);
  // API keys, draining and the generation cap; false with `res` set to
  // the refusal.
  bool Admit(const httplib::Request& req, httplib::Response& res,
             absl::Time arrival, std::shared_ptr<Slot>* slot);
  void Reply(const HttpReply& reply, httplib::Response& res) const;
  void Record(const CallOutcome& outcome, absl::Time arrival) const;

  const HttpOptions options_;
  OpenAiApi* const api_;
  const ApiKeys* const keys_;
  telemetry::Metrics* const metrics_;
  std::unique_ptr<httplib::Server> http_;
  std::thread listener_;
  int port_ = -1;
  std::atomic<bool> not_ready_{false};
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopped_{false};
  absl::Mutex mu_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace joule::server

#endif  // JOULE_SERVER_HTTP_SERVER_H_
