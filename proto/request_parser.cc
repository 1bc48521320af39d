#include "proto/request_parser.h"

#include <cstdint>

#include "absl/strings/str_format.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace joule::v1 {
namespace {

using google::protobuf::internal::WireFormatLite;

// The length of the well-formed character starting at s[0], or 0.
size_t Utf8CharLength(absl::string_view s) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const auto cont = [&](size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  const uint8_t c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // Overlong.
    if (c == 0xED && b(1) >= 0xA0) return 0;  // UTF-16 surrogate.
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // Overlong.
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // Above U+10FFFF.
    return 4;
  }
  return 0;
}

// The name of a GenerateRequest string field, or nullptr for other fields.
const char* StringFieldName(int number) {
  switch (number) {
    case GenerateRequest::kPromptFieldNumber:
      return "prompt";
    case GenerateRequest::kStopFieldNumber:
      return "stop";
    case GenerateRequest::kDeviceFieldNumber:
      return "device";
    case GenerateRequest::kRequestIdFieldNumber:
      return "request_id";
  }
  return nullptr;
}

absl::Status Malformed() {
  return absl::InvalidArgumentError(
      "the request is not a well-formed joule.v1.GenerateRequest message");
}

// Walks the top-level fields and checks every string field's UTF-8 before
// protobuf sees them.
absl::Status CheckStringFields(absl::string_view bytes) {
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(bytes.data()),
      static_cast<int>(bytes.size()));
  int stop_index = 0;
  while (uint32_t tag = in.ReadTag()) {
    const int number = WireFormatLite::GetTagFieldNumber(tag);
    const char* name = StringFieldName(number);
    if (name == nullptr || WireFormatLite::GetTagWireType(tag) !=
                               WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!WireFormatLite::SkipField(&in, tag)) return Malformed();
      continue;
    }
    uint32_t length = 0;
    const void* data = nullptr;
    int available = 0;
    if (!in.ReadVarint32(&length)) return Malformed();
    // One flat array: the direct buffer is the rest of the message.
    in.GetDirectBufferPointer(&data, &available);
    if (available < 0 || length > static_cast<uint32_t>(available)) {
      return Malformed();
    }
    const absl::string_view text(static_cast<const char*>(data), length);
    const size_t bad = FirstInvalidUtf8(text);
    if (bad != absl::string_view::npos) {
      const std::string field =
          number == GenerateRequest::kStopFieldNumber
              ? absl::StrFormat("stop[%d]", stop_index)
              : std::string(name);
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s is not valid UTF-8 (byte %d of %d, 0x%02x); send text as UTF-8",
          field, bad, text.size(), static_cast<uint8_t>(text[bad])));
    }
    if (number == GenerateRequest::kStopFieldNumber) ++stop_index;
    if (!in.Skip(static_cast<int>(length))) return Malformed();
  }
  // ReadTag returns 0 at the end and on a bad tag; only the first is fine.
  return in.ConsumedEntireMessage() && in.CurrentPosition() ==
                                           static_cast<int>(bytes.size())
             ? absl::OkStatus()
             : Malformed();
}

}  // namespace

size_t FirstInvalidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const size_t n = Utf8CharLength(text.substr(i));
    if (n == 0) return i;
    i += n;
  }
  return absl::string_view::npos;
}

absl::Status ParseGenerateRequest(absl::string_view bytes,
                                  GenerateRequest* request) {
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) return Malformed();
  if (absl::Status s = CheckStringFields(bytes); !s.ok()) return s;
  if (!request->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Malformed();
  }
  return absl::OkStatus();
}

}  // namespace joule::v1
