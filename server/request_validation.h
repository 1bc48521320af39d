#ifndef JOULE_SERVER_REQUEST_VALIDATION_H_
#define JOULE_SERVER_REQUEST_VALIDATION_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/joule.pb.h"

namespace joule::server {

struct RequestLimits {
  int max_context = 0;       // Model positions.
  int max_prompt_bytes = 0;  // Longer prompts cannot fit the context.
  std::vector<std::string> devices;
  int max_stop_sequences = 16;
  int max_stop_bytes = 256;
  int max_request_id_bytes = 128;
};

// Checks every field that does not need the tokenizer. Errors are
// INVALID_ARGUMENT and say which field is wrong and what would be valid.
absl::Status ValidateRequest(const v1::GenerateRequest& request,
                             const RequestLimits& limits);

// The first C0 control, DEL or C1 control (U+0080..U+009F, which some
// terminals take as escape sequences) in `s`, or npos: what must not reach
// a log line verbatim.
size_t FirstControlCharacter(absl::string_view s);

// The tokenized prompt must leave room for at least one generated token.
absl::Status ValidatePromptLength(int prompt_tokens,
                                  const RequestLimits& limits);

}  // namespace joule::server

#endif  // JOULE_SERVER_REQUEST_VALIDATION_H_
