#include "server/request_validation.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "proto/request_parser.h"

namespace joule::server {
namespace {

template <typename... Args>
absl::Status Invalid(const absl::FormatSpec<Args...>& format,
                     const Args&... args) {
  return absl::InvalidArgumentError(absl::StrFormat(format, args...));
}

}  // namespace

size_t FirstControlCharacter(absl::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) return i;
    if (c == 0xC2 && i + 1 < s.size() &&
        static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(s[i + 1]) <= 0x9F) {
      return i;
    }
  }
  return absl::string_view::npos;
}

absl::Status ValidateRequest(const v1::GenerateRequest& r,
                             const RequestLimits& limits) {
  if (r.has_max_tokens() && r.max_tokens() < 1) {
    return Invalid(
        "max_tokens must be at least 1 (got %d); leave it unset to generate "
        "until the context is full",
        r.max_tokens());
  }
  if (r.has_temperature() &&
      (!std::isfinite(r.temperature()) || r.temperature() < 0.0f)) {
    return Invalid(
        "temperature must be a finite number >= 0 (0 is greedy); got %g",
        r.temperature());
  }
  if (r.has_top_p() && !(r.top_p() > 0.0f && r.top_p() <= 1.0f)) {
    return Invalid("top_p must be in (0, 1] (1 disables it); got %g",
                   r.top_p());
  }
  if (r.has_top_k() && r.top_k() < 0) {
    return Invalid("top_k must be >= 0 (0 disables it); got %d", r.top_k());
  }
  if (r.stop_size() > limits.max_stop_sequences) {
    return Invalid("at most %d stop sequences are allowed; got %d",
                   limits.max_stop_sequences, r.stop_size());
  }
  // gRPC's parser already refuses bad UTF-8; requests built in process
  // (or by another front end) are held to the same rule.
  if (const size_t bad = v1::FirstInvalidUtf8(r.prompt());
      bad != absl::string_view::npos) {
    return Invalid("prompt is not valid UTF-8 (byte %d); send text as UTF-8",
                   bad);
  }
  for (int i = 0; i < r.stop_size(); ++i) {
    if (r.stop(i).empty()) return Invalid("stop[%d] is empty", i);
    if (const size_t bad = v1::FirstInvalidUtf8(r.stop(i));
        bad != absl::string_view::npos) {
      return Invalid("stop[%d] is not valid UTF-8 (byte %d)", i, bad);
    }
    if (static_cast<int>(r.stop(i).size()) > limits.max_stop_bytes) {
      return Invalid("stop[%d] is %d bytes; the limit is %d", i,
                     r.stop(i).size(), limits.max_stop_bytes);
    }
  }
  if (!r.device().empty() &&
      std::find(limits.devices.begin(), limits.devices.end(), r.device()) ==
          limits.devices.end()) {
    return Invalid("unknown device '%s'; this server has: %s", r.device(),
                   absl::StrJoin(limits.devices, ", "));
  }
  if (r.pin_device() && r.device().empty()) {
    return Invalid("pin_device needs a device name in `device`");
  }
  if (r.priority() < -10 || r.priority() > 10) {
    return Invalid("priority must be in -10..10; got %d", r.priority());
  }
  if (static_cast<int>(r.request_id().size()) > limits.max_request_id_bytes) {
    return Invalid("request_id is %d bytes; the limit is %d",
                   r.request_id().size(), limits.max_request_id_bytes);
  }
  if (const size_t bad = FirstControlCharacter(r.request_id());
      bad != absl::string_view::npos) {
    return Invalid(
        "request_id has a control character at byte %d; use printable text "
        "(it is written to logs and echoed in the summary)",
        bad);
  }
  if (static_cast<int64_t>(r.prompt().size()) > limits.max_prompt_bytes) {
    return Invalid(
        "prompt is %d bytes, more than can fit the model's context of %d "
        "tokens; shorten the prompt",
        r.prompt().size(), limits.max_context);
  }
  return absl::OkStatus();
}

absl::Status ValidatePromptLength(int prompt_tokens,
                                  const RequestLimits& limits) {
  if (prompt_tokens > limits.max_context) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "prompt is %d tokens (BOS included) but the model's context is %d "
        "tokens; shorten the prompt",
        prompt_tokens, limits.max_context));
  }
  return absl::OkStatus();
}

}  // namespace joule::server
