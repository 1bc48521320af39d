// Request admission from the bytes a client sends: the GenerateRequest parser
// (UTF-8 checked field by field) and then validation. Neither may crash, and
// an accepted request must satisfy what the scheduler relies on.
#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "proto/joule.pb.h"
#include "proto/request_parser.h"
#include "server/request_validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  joule::v1::GenerateRequest request;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (!joule::v1::ParseGenerateRequest(bytes, &request).ok()) return 0;
  joule::server::RequestLimits limits;
  limits.max_context = 512;
  limits.max_prompt_bytes = 4096;
  limits.devices = {"cpu", "riscv"};
  if (!joule::server::ValidateRequest(request, limits).ok()) return 0;
  const bool sane =
      (!request.has_temperature() || (std::isfinite(request.temperature()) &&
                                      request.temperature() >= 0)) &&
      (!request.has_top_p() ||
       (request.top_p() > 0 && request.top_p() <= 1)) &&
      (!request.has_max_tokens() || request.max_tokens() >= 1) &&
      joule::v1::FirstInvalidUtf8(request.prompt()) ==
          absl::string_view::npos &&
      static_cast<int>(request.prompt().size()) <= limits.max_prompt_bytes;
  if (!sane) __builtin_trap();
  return 0;
}
