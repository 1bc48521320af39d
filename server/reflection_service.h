#ifndef JOULE_SERVER_REFLECTION_SERVICE_H_
#define JOULE_SERVER_REFLECTION_SERVICE_H_

#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "proto/reflection.grpc.pb.h"
#include "server/auth.h"
#include "telemetry/metrics.h"

namespace joule::server {

// gRPC server reflection (v1alpha, what grpcurl and ghz ask for) over the
// protos linked into the binary. Joule serves it itself, not through
// gRPC's reflection plugin, because a plugin-registered service cannot be
// made to check an API key: with keys configured, reflection tells
// nothing to a caller without one.
class ReflectionService final
    : public grpc::reflection::v1alpha::ServerReflection::Service {
 public:
  // `services` are the full names listed to clients. `keys` and
  // `metrics` (may be null) outlive the service.
  ReflectionService(std::vector<std::string> services, const ApiKeys* keys,
                    telemetry::Metrics* metrics);

  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<
          grpc::reflection::v1alpha::ServerReflectionResponse,
          grpc::reflection::v1alpha::ServerReflectionRequest>* stream)
      override;

  static constexpr char kServiceName[] =
      "grpc.reflection.v1alpha.ServerReflection";

 private:
  const std::vector<std::string> services_;
  const ApiKeys& keys_;
  telemetry::Metrics* const metrics_;
};

}  // namespace joule::server

#endif  // JOULE_SERVER_REFLECTION_SERVICE_H_
