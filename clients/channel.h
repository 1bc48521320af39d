#ifndef JOULE_CLIENTS_CHANNEL_H_
#define JOULE_CLIENTS_CHANNEL_H_

// The connection flags joule_cli and joule_loadgen share: --api_key (default
// $JOULE_API_KEY), --tls, --tls_ca_file, --tls_cert_file, --tls_key_file and
// --tls_server_name. Linking this library defines them.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace joule::clients {

// A channel to a Joule server and the key its calls carry.
struct Connection {
  std::shared_ptr<grpc::Channel> channel;
  std::string api_key;  // Empty: calls carry none.

  // Adds 'authorization: Bearer <key>' to a call. Metadata on each call
  // rather than call credentials: gRPC sends call credentials only over
  // TLS, and a key on a plaintext loopback port is a valid set-up.
  void Prepare(grpc::ClientContext* context) const;
};

// Connects to `target` as the flags say. Errors name the flag (a missing
// file, a certificate without its key).
absl::StatusOr<Connection> ConnectFromFlags(const std::string& target);

}  // namespace joule::clients

#endif  // JOULE_CLIENTS_CHANNEL_H_
