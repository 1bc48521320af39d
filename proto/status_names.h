#ifndef JOULE_PROTO_STATUS_NAMES_H_
#define JOULE_PROTO_STATUS_NAMES_H_

#include "grpcpp/grpcpp.h"

namespace joule::proto {

// The canonical name of a gRPC status code, e.g. "INVALID_ARGUMENT".
const char* StatusCodeName(grpc::StatusCode code);

}  // namespace joule::proto

#endif  // JOULE_PROTO_STATUS_NAMES_H_
