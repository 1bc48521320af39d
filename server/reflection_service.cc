#include "server/reflection_service.h"

#include <unordered_set>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "proto/health.grpc.pb.h"
#include "server/transport_security.h"

namespace joule::server {
namespace {

namespace rpb = grpc::reflection::v1alpha;
using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;

// Adds `file` and, recursively, what it imports, each once: a client
// needs the whole closure to build the descriptors.
void AddFile(const FileDescriptor* file, std::unordered_set<std::string>* seen,
             rpb::FileDescriptorResponse* out) {
  if (!seen->insert(file->name()).second) return;
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  proto.SerializeToString(out->add_file_descriptor_proto());
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFile(file->dependency(i), seen, out);
  }
}

grpc::Status FileResponse(const FileDescriptor* file,
                          rpb::ServerReflectionResponse* response) {
  if (file == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "not found");
  }
  std::unordered_set<std::string> seen;
  AddFile(file, &seen, response->mutable_file_descriptor_response());
  return grpc::Status::OK;
}

const FileDescriptor* FileOfExtension(const DescriptorPool& pool,
                                      const rpb::ExtensionRequest& request) {
  const Descriptor* type =
      pool.FindMessageTypeByName(request.containing_type());
  if (type == nullptr) return nullptr;
  const FieldDescriptor* ext =
      pool.FindExtensionByNumber(type, request.extension_number());
  return ext == nullptr ? nullptr : ext->file();
}

grpc::Status ExtensionNumbers(const DescriptorPool& pool,
                              const std::string& type_name,
                              rpb::ServerReflectionResponse* response) {
  const Descriptor* type = pool.FindMessageTypeByName(type_name);
  if (type == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "type not found");
  }
  std::vector<const FieldDescriptor*> extensions;
  pool.FindAllExtensions(type, &extensions);
  auto* out = response->mutable_all_extension_numbers_response();
  out->set_base_type_name(type->full_name());
  for (const FieldDescriptor* ext : extensions) {
    out->add_extension_number(ext->number());
  }
  return grpc::Status::OK;
}

}  // namespace

ReflectionService::ReflectionService(std::vector<std::string> services,
                                     const ApiKeys* keys,
                                     telemetry::Metrics* metrics)
    : services_(std::move(services)), keys_(*keys), metrics_(metrics) {
  // gRPC's built-in health service answers without a descriptor; naming
  // the linked-in one keeps it in the binary (and in the generated pool),
  // so grpc.health.v1.Health resolves for clients without the .proto.
  (void)grpc::health::v1::Health::service_full_name();
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
}

grpc::Status ReflectionService::ServerReflectionInfo(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<rpb::ServerReflectionResponse,
                             rpb::ServerReflectionRequest>* stream) {
  if (grpc::Status s = AuthorizeCall(keys_, *context); !s.ok()) {
    if (metrics_ != nullptr) metrics_->RefusedCall("grpc", "unauthenticated");
    return s;
  }
  const DescriptorPool& pool = *DescriptorPool::generated_pool();
  rpb::ServerReflectionRequest request;
  while (stream->Read(&request)) {
    rpb::ServerReflectionResponse response;
    grpc::Status s;
    switch (request.message_request_case()) {
      case rpb::ServerReflectionRequest::kFileByFilename:
        s = FileResponse(pool.FindFileByName(request.file_by_filename()),
                         &response);
        break;
      case rpb::ServerReflectionRequest::kFileContainingSymbol:
        s = FileResponse(
            pool.FindFileContainingSymbol(request.file_containing_symbol()),
            &response);
        break;
      case rpb::ServerReflectionRequest::kFileContainingExtension:
        s = FileResponse(
            FileOfExtension(pool, request.file_containing_extension()),
            &response);
        break;
      case rpb::ServerReflectionRequest::kAllExtensionNumbersOfType:
        s = ExtensionNumbers(pool, request.all_extension_numbers_of_type(),
                             &response);
        break;
      case rpb::ServerReflectionRequest::kListServices:
        for (const std::string& name : services_) {
          response.mutable_list_services_response()->add_service()->set_name(
              name);
        }
        break;
      default:
        s = grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                         "unknown reflection request");
    }
    if (!s.ok()) {
      response.mutable_error_response()->set_error_code(s.error_code());
      response.mutable_error_response()->set_error_message(s.error_message());
    }
    response.set_valid_host(request.host());
    *response.mutable_original_request() = request;
    if (!stream->Write(response)) break;
  }
  return grpc::Status::OK;
}

}  // namespace joule::server
