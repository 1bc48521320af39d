#include "server/http_server.h"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <csignal>

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "server/http_connection.h"
#include "spdlog/spdlog.h"

namespace joule::server {
namespace {

constexpr char kJson[] = "application/json";

// Every PEM certificate in `pem`, in order.
std::vector<X509*> ReadCertificates(const std::string& pem) {
  std::vector<X509*> certs;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  while (X509* c = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    certs.push_back(c);
  }
  BIO_free(bio);
  return certs;
}

// The same material the gRPC port uses: leaf and chain, key, and for mutual
// TLS the client CAs, whose certificates clients must present.
bool ConfigureTls(const TlsConfig& tls, SSL_CTX& ctx) {
  SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
  std::vector<X509*> chain = ReadCertificates(tls.cert_chain_pem);
  bool ok = !chain.empty() && SSL_CTX_use_certificate(&ctx, chain[0]) == 1;
  for (size_t i = 1; ok && i < chain.size(); ++i) {
    ok = SSL_CTX_add1_chain_cert(&ctx, chain[i]) == 1;
  }
  for (X509* c : chain) X509_free(c);
  BIO* bio = BIO_new_mem_buf(tls.private_key_pem.data(),
                             static_cast<int>(tls.private_key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ok = ok && key != nullptr && SSL_CTX_use_PrivateKey(&ctx, key) == 1 &&
       SSL_CTX_check_private_key(&ctx) == 1;
  EVP_PKEY_free(key);
  if (!ok || tls.client_ca_pem.empty()) return ok;
  X509_STORE* store = X509_STORE_new();
  for (X509* ca : ReadCertificates(tls.client_ca_pem)) {
    X509_STORE_add_cert(store, ca);
    X509_free(ca);
  }
  SSL_CTX_set_cert_store(&ctx, store);  // Takes ownership.
  SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     nullptr);
  return true;
}

// An SSL_CTX for `tls`; null for plaintext.
absl::StatusOr<SSL_CTX*> MakeTlsContext(const std::optional<TlsConfig>& tls) {
  if (!tls.has_value()) return nullptr;
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr || !ConfigureTls(*tls, *ctx)) {
    if (ctx != nullptr) SSL_CTX_free(ctx);
    return absl::InvalidArgumentError(
        "HTTP port: the TLS certificate and key could not be used");
  }
  return ctx;
}

// What httplib itself refuses (no route, body too large, a malformed
// request line) in OpenAI's error shape.
std::string LibraryErrorMessage(const httplib::Request& req, int status,
                                size_t max_body) {
  switch (status) {
    case 404:
      return absl::StrCat("no endpoint ", req.method, " ", req.path,
                          "; Joule serves GET /v1/models, POST "
                          "/v1/completions, POST /v1/chat/completions and "
                          "GET /health");
    case 413:
      return absl::StrCat("the request body is larger than ", max_body,
                          " bytes (--http_max_body_bytes)");
    case 414:
      return "the request URI is too long";
    default:
      return absl::StrCat("malformed HTTP request (status ", status, ")");
  }
}

}  // namespace

// Holds one of --http_max_concurrent_generations for as long as it lives.
class HttpServer::Slot {
 public:
  Slot(absl::Mutex* mu, int* active) : mu_(mu), active_(active) {
    absl::MutexLock lock(mu_);
    count_ = ++*active_;
  }
  ~Slot() {
    absl::MutexLock lock(mu_);
    --*active_;
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  int count() const { return count_; }

 private:
  absl::Mutex* const mu_;
  int* const active_;
  int count_ = 0;
};

HttpServer::HttpServer(const HttpOptions& options, OpenAiApi* api,
                       const ApiKeys* keys, telemetry::Metrics* metrics)
    : options_(options), api_(api), keys_(keys), metrics_(metrics) {}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const HttpOptions& options, OpenAiApi* api, const ApiKeys* keys,
    const std::optional<TlsConfig>& tls, telemetry::Metrics* metrics) {
  std::unique_ptr<HttpServer> s(new HttpServer(options, api, keys, metrics));
  auto ctx = MakeTlsContext(tls);
  if (!ctx.ok()) return ctx.status();
  // SSL_write to a client that went away raises SIGPIPE; the failed write
  // is what tells the server, so the signal must not end the process.
  std::signal(SIGPIPE, SIG_IGN);
  ConnectionLimits limits;
  limits.max_body_bytes = options.max_body_bytes + 64 * 1024;
  limits.request_timeout = options.read_timeout;
  limits.write_timeout = options.write_timeout;
  limits.keep_alive_timeout = options.keep_alive_timeout;
  auto bounded = std::make_unique<BoundedServer>(limits, *ctx);
  BoundedServer* server = bounded.get();
  s->http_ = std::move(bounded);
  const int threads = options.threads;
  s->http_->new_task_queue = [threads] {
    return new httplib::ThreadPool(threads);
  };
  // Declared bodies over the limit get 413 before any byte of them is read.
  s->http_->set_payload_max_length(options.max_body_bytes);
  s->Routes();
  const std::string host =
      options.host.size() > 2 && options.host.front() == '['
          ? options.host.substr(1, options.host.size() - 2)
          : options.host;
  if (options.port == 0) {
    s->port_ = s->http_->bind_to_any_port(host);
  } else if (s->http_->bind_to_port(host, options.port)) {
    s->port_ = options.port;
  }
  if (s->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen for HTTP on ", options.host, ":", options.port,
        " (in use? pass --http_port to choose another, or -1 to turn "
        "HTTP off)"));
  }
  server->WidenBacklog();
  HttpServer* self = s.get();
  s->listener_ = std::thread([self] { self->http_->listen_after_bind(); });
  return s;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop() {
  if (stopped_.exchange(true)) return;
  http_->stop();
  if (listener_.joinable()) listener_.join();
}

void HttpServer::WaitForGenerations(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return active_ == 0; };
  mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

void HttpServer::Routes() {
  const size_t max_body = options_.max_body_bytes;
  http_->set_error_handler(
      [max_body](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;
        res.set_content(
            Dump(ErrorBody(res.status,
                           LibraryErrorMessage(req, res.status, max_body),
                           std::nullopt)),
            kJson);
      });
  http_->set_exception_handler([](const httplib::Request& req,
                                  httplib::Response& res, std::exception_ptr) {
    spdlog::error("HTTP {} {}: internal error", req.method, req.path);
    res.status = 500;
    res.set_content(Dump(ErrorBody(500, "internal error", std::nullopt)),
                    kJson);
  });
  http_->Get("/health", [this](const httplib::Request&,
                               httplib::Response& res) { Health(res); });
  http_->Get("/v1/models",
             [this](const httplib::Request&, httplib::Response& res) {
               Reply(api_->Models(), res);
             });
  http_->Post("/v1/completions",
              [this](const httplib::Request& req, httplib::Response& res) {
                Generate(Endpoint::kCompletions, req, res);
              });
  http_->Post("/v1/chat/completions",
              [this](const httplib::Request& req, httplib::Response& res) {
                Generate(Endpoint::kChatCompletions, req, res);
              });
}

void HttpServer::Health(httplib::Response& res) const {
  const char* status = not_ready_.load()           ? "draining"
                       : !api_->AnyDeviceHealthy() ? "no healthy device"
                                                   : "ok";
  res.status = absl::string_view(status) == "ok" ? 200 : 503;
  res.set_content(Dump({{"status", status}}), kJson);
}

void HttpServer::Reply(const HttpReply& reply, httplib::Response& res) const {
  res.status = reply.status;
  res.set_content(reply.body, kJson);
}

void HttpServer::Record(const CallOutcome& outcome, absl::Time arrival) const {
  if (metrics_ == nullptr) return;
  metrics_->Request("http", outcome.device, std::to_string(outcome.status),
                    outcome.ttft, absl::Now() - arrival, outcome.queue);
}

bool HttpServer::Admit(const httplib::Request& req, httplib::Response& res,
                       absl::Time arrival, std::shared_ptr<Slot>* slot) {
  std::optional<std::string> header;
  if (req.has_header("Authorization")) {
    header = req.get_header_value("Authorization");
  }
  std::optional<absl::string_view> authorization;
  if (header.has_value()) authorization = *header;
  absl::Status refusal =
      keys_ != nullptr ? keys_->Check(authorization) : absl::OkStatus();
  const char* reason = "unauthenticated";
  if (refusal.ok() && draining_.load()) {
    refusal = absl::UnavailableError(
        "the server is shutting down; retry (another replica will answer)");
    reason = "draining";
  }
  if (refusal.ok()) {
    *slot = std::make_shared<Slot>(&mu_, &active_);
    if ((*slot)->count() > options_.max_generations) {
      slot->reset();
      reason = "max_http_generations";
      refusal = absl::ResourceExhaustedError(absl::StrCat(
          "too many concurrent generations: this server runs at most ",
          options_.max_generations,
          " HTTP completions at once (--http_max_concurrent_generations); "
          "retry later"));
    }
  }
  if (refusal.ok()) return true;
  if (metrics_ != nullptr) metrics_->RefusedCall("http", reason);
  const HttpReply reply = ErrorReply(refusal);
  Reply(reply, res);
  if (reply.status == 401) res.set_header("WWW-Authenticate", "Bearer");
  if (reply.status == 429 || reply.status == 503) {
    res.set_header("Retry-After", "1");
  }
  Record({reply.status, "", std::nullopt, std::nullopt}, arrival);
  return false;
}

void HttpServer::Generate(Endpoint endpoint, const httplib::Request& req,
                          httplib::Response& res) {
  const absl::Time arrival = absl::Now();
  std::shared_ptr<Slot> slot;
  if (!Admit(req, res, arrival, &slot)) return;
  auto job = api_->Start(endpoint, req.body, arrival);
  if (!job.ok()) {
    const HttpReply reply = ErrorReply(job.status());
    Reply(reply, res);
    if (reply.status == 429 || reply.status == 503) {
      res.set_header("Retry-After", "1");
    }
    Record({reply.status, "", std::nullopt, std::nullopt}, arrival);
    return;
  }
  if (!(*job)->streaming()) {
    Reply((*job)->RunToEnd(), res);
    Record((*job)->outcome(), arrival);
    return;
  }
  // The provider runs after this handler returns, on the same thread; the
  // response owns the job (destroying it cancels what still runs) and the
  // slot.
  std::shared_ptr<CompletionJob> shared = *std::move(job);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // nginx: pass events at once.
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, shared, slot, arrival](size_t, httplib::DataSink& sink) {
        bool open = true;
        shared->Stream([&](absl::string_view data) {
          open = open && sink.write(data.data(), data.size());
          return open;
        });
        Record(shared->outcome(), arrival);
        if (open) sink.done();
        return open;
      });
}

}  // namespace joule::server
