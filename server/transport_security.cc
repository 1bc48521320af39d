#include "server/transport_security.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace joule::server {
namespace {

absl::StatusOr<std::string> ReadPem(absl::string_view flag,
                                    const std::string& path,
                                    absl::string_view marker) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  // gRPC would only fail at the first handshake, or at BuildAndStart with
  // no reason given; a file of the wrong kind is caught here by name.
  if (!absl::StrContains(pem, "-----BEGIN ") ||
      !absl::StrContains(pem, marker)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": ", path, " holds no PEM ", marker));
  }
  return pem;
}

}  // namespace

absl::StatusOr<std::optional<TlsConfig>> LoadTls(const TlsFiles& files) {
  const bool cert = !files.cert_file.empty();
  const bool key = !files.key_file.empty();
  if (cert != key) {
    return absl::InvalidArgumentError(
        cert ? "--tls_cert_file is set but --tls_key_file is not: TLS needs "
               "both the certificate and its private key"
             : "--tls_key_file is set but --tls_cert_file is not: TLS needs "
               "both the certificate and its private key");
  }
  if (!cert) {
    if (!files.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls_client_ca_file needs --tls_cert_file and --tls_key_file: "
          "mutual TLS is TLS with client certificates");
    }
    return std::nullopt;
  }
  TlsConfig tls;
  auto chain = ReadPem("tls_cert_file", files.cert_file, "CERTIFICATE");
  if (!chain.ok()) return chain.status();
  tls.cert_chain_pem = *std::move(chain);
  auto pkey = ReadPem("tls_key_file", files.key_file, "PRIVATE KEY");
  if (!pkey.ok()) return pkey.status();
  tls.private_key_pem = *std::move(pkey);
  if (!files.client_ca_file.empty()) {
    auto ca =
        ReadPem("tls_client_ca_file", files.client_ca_file, "CERTIFICATE");
    if (!ca.ok()) return ca.status();
    tls.client_ca_pem = *std::move(ca);
  }
  return tls;
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(
    const std::optional<TlsConfig>& tls) {
  if (!tls.has_value()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      tls->client_ca_pem.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = tls->client_ca_pem;
  options.pem_key_cert_pairs.push_back(
      {tls->private_key_pem, tls->cert_chain_pem});
  return grpc::SslServerCredentials(options);
}

grpc::Status AuthorizeCall(const ApiKeys& keys,
                           const grpc::ServerContext& context) {
  if (!keys.enabled()) return grpc::Status::OK;
  std::optional<absl::string_view> authorization;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  absl::Status s = keys.Check(authorization);
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      std::string(s.message()));
}

}  // namespace joule::server
