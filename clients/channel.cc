#include "clients/channel.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

ABSL_FLAG(std::string, api_key, "",
          "API key sent as 'authorization: Bearer <key>'. Empty: "
          "$JOULE_API_KEY, if set (keeps the key off the command line).");
ABSL_FLAG(bool, tls, false,
          "Connect with TLS, verifying the server against the system's CAs "
          "or --tls_ca_file.");
ABSL_FLAG(std::string, tls_ca_file, "",
          "PEM CA certificates that sign the server's certificate (implies "
          "--tls).");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM client certificate for mutual TLS (with --tls_key_file; "
          "implies --tls).");
ABSL_FLAG(std::string, tls_key_file, "", "PEM key of --tls_cert_file.");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name to verify the server's certificate against, when it differs "
          "from --target's host.");

namespace joule::clients {
namespace {

absl::StatusOr<std::string> ReadFile(const char* flag,
                                     const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<grpc::SslCredentialsOptions> TlsFromFlags() {
  const std::string cert = absl::GetFlag(FLAGS_tls_cert_file);
  const std::string key = absl::GetFlag(FLAGS_tls_key_file);
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert_file and --tls_key_file go together");
  }
  grpc::SslCredentialsOptions ssl;
  if (const std::string ca = absl::GetFlag(FLAGS_tls_ca_file); !ca.empty()) {
    auto pem = ReadFile("tls_ca_file", ca);
    if (!pem.ok()) return pem.status();
    ssl.pem_root_certs = *std::move(pem);
  }
  if (!cert.empty()) {
    auto chain = ReadFile("tls_cert_file", cert);
    if (!chain.ok()) return chain.status();
    auto pkey = ReadFile("tls_key_file", key);
    if (!pkey.ok()) return pkey.status();
    ssl.pem_cert_chain = *std::move(chain);
    ssl.pem_private_key = *std::move(pkey);
  }
  return ssl;
}

std::string ApiKeyFromFlags() {
  std::string key = absl::GetFlag(FLAGS_api_key);
  if (key.empty()) {
    if (const char* env = std::getenv("JOULE_API_KEY")) key = env;
  }
  return std::string(absl::StripAsciiWhitespace(key));
}

}  // namespace

void Connection::Prepare(grpc::ClientContext* context) const {
  if (!api_key.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", api_key));
  }
}

absl::StatusOr<Connection> ConnectFromFlags(const std::string& target) {
  Connection c;
  c.api_key = ApiKeyFromFlags();
  const bool tls = absl::GetFlag(FLAGS_tls) ||
                   !absl::GetFlag(FLAGS_tls_ca_file).empty() ||
                   !absl::GetFlag(FLAGS_tls_cert_file).empty();
  if (!tls) {
    c.channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
    return c;
  }
  auto ssl = TlsFromFlags();
  if (!ssl.ok()) return ssl.status();
  grpc::ChannelArguments args;
  if (const std::string name = absl::GetFlag(FLAGS_tls_server_name);
      !name.empty()) {
    args.SetSslTargetNameOverride(name);
  }
  c.channel = grpc::CreateCustomChannel(target, grpc::SslCredentials(*ssl),
                                        args);
  return c;
}

}  // namespace joule::clients
