#ifndef JOULE_CLIENTS_STATUS_NAMES_H_
#define JOULE_CLIENTS_STATUS_NAMES_H_

#include "grpcpp/grpcpp.h"

namespace joule::clients {

// The canonical name of a gRPC status code, e.g. "INVALID_ARGUMENT".
const char* StatusCodeName(grpc::StatusCode code);

}  // namespace joule::clients

#endif  // JOULE_CLIENTS_STATUS_NAMES_H_
