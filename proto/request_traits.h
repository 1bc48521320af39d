#ifndef JOULE_PROTO_REQUEST_TRAITS_H_
#define JOULE_PROTO_REQUEST_TRAITS_H_

// How gRPC turns the bytes of a GenerateRequest into the message. The
// generated joule.grpc.pb.h includes this header (grpc_cpp_plugin's
// additional_header_includes), so every translation unit that instantiates
// a Joule method sees this specialization before it does.

#include <string>
#include <vector>

#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/byte_buffer.h"
#include "proto/joule.pb.h"
#include "proto/request_parser.h"

namespace grpc {

template <>
class SerializationTraits<joule::v1::GenerateRequest, void> {
 public:
  static Status Serialize(const joule::v1::GenerateRequest& msg,
                          ByteBuffer* bb, bool* own_buffer) {
    return GenericSerialize<ProtoBufferWriter, joule::v1::GenerateRequest>(
        msg, bb, own_buffer);
  }

  // A bad request gets INVALID_ARGUMENT with a message saying what to fix
  // (protobuf's parser would make it INTERNAL with no message).
  static Status Deserialize(ByteBuffer* buffer,
                            joule::v1::GenerateRequest* msg) {
    if (buffer == nullptr) {
      return Status(StatusCode::INTERNAL, "no request payload");
    }
    std::vector<Slice> slices;
    const Status dumped = buffer->Dump(&slices);
    buffer->Clear();
    if (!dumped.ok()) return dumped;
    std::string bytes;
    for (const Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    const absl::Status parsed = joule::v1::ParseGenerateRequest(bytes, msg);
    if (parsed.ok()) return Status::OK;
    return Status(static_cast<StatusCode>(parsed.code()),
                  std::string(parsed.message()));
  }
};

}  // namespace grpc

#endif  // JOULE_PROTO_REQUEST_TRAITS_H_
