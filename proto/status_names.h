#ifndef JOULE_PROTO_STATUS_NAMES_H_
#define JOULE_PROTO_STATUS_NAMES_H_

#include "grpcpp/grpcpp.h"
#include "proto/joule.pb.h"

namespace joule::proto {

// The canonical name of a gRPC status code, e.g. "INVALID_ARGUMENT".
const char* StatusCodeName(grpc::StatusCode code);

// How an energy figure was obtained: "measured", "simulated", "modeled", or
// "unknown".
const char* EnergySourceName(v1::EnergySource source);

}  // namespace joule::proto

#endif  // JOULE_PROTO_STATUS_NAMES_H_
