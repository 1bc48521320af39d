#ifndef JOULE_SERVER_TRANSPORT_SECURITY_H_
#define JOULE_SERVER_TRANSPORT_SECURITY_H_

// TLS for the gRPC port and the gRPC side of API keys (server/auth.h holds
// the transport-independent part).

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/server_credentials.h"
#include "server/auth.h"

namespace joule::server {

// The files the --tls_* flags name. All empty: plaintext.
struct TlsFiles {
  std::string cert_file;       // PEM certificate chain, leaf first.
  std::string key_file;        // PEM private key of the leaf.
  std::string client_ca_file;  // Set: clients must present a certificate
                               // signed by one of these CAs (mutual TLS).
};

// TLS material in PEM.
struct TlsConfig {
  std::string cert_chain_pem;
  std::string private_key_pem;
  std::string client_ca_pem;  // Empty: client certificates are not asked for.
};

// Reads and checks the files: both or neither of cert and key, a client CA
// only with them, each readable and holding PEM of the right kind. Errors
// name the flag and the file. nullopt when TLS is off.
absl::StatusOr<std::optional<TlsConfig>> LoadTls(const TlsFiles& files);

// TLS server credentials for `tls`, insecure ones without it.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(
    const std::optional<TlsConfig>& tls);

// The call's `authorization` metadata against `keys`: OK, or
// UNAUTHENTICATED with a message that does not repeat the key.
grpc::Status AuthorizeCall(const ApiKeys& keys,
                           const grpc::ServerContext& context);

}  // namespace joule::server

#endif  // JOULE_SERVER_TRANSPORT_SECURITY_H_
