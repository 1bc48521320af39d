#ifndef JOULE_PROTO_REQUEST_PARSER_H_
#define JOULE_PROTO_REQUEST_PARSER_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/joule.pb.h"

namespace joule::v1 {

// Parses a serialized GenerateRequest from a client. Unlike protobuf's own
// parser, which fails on a string field holding invalid UTF-8 with no
// message (gRPC then answers INTERNAL with an empty one) and logs an error
// per attempt, this names the field and the offset of its first bad byte:
// INVALID_ARGUMENT, with nothing logged.
absl::Status ParseGenerateRequest(absl::string_view bytes,
                                  GenerateRequest* request);

// The offset of the first byte of `text` that is not part of a well-formed
// UTF-8 character (overlong forms, surrogates and code points above
// U+10FFFF are not), or npos when all of it is valid.
size_t FirstInvalidUtf8(absl::string_view text);

}  // namespace joule::v1

#endif  // JOULE_PROTO_REQUEST_PARSER_H_
