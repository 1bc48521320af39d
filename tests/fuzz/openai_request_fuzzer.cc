// The HTTP API's parsers of request bodies and of the --chat_template file.
// Neither may crash (an exception escaping nlohmann::json is one), an
// accepted request must hold what GenerationRunner and the response writers
// rely on, and a refusal must be INVALID_ARGUMENT with a message that says
// something and whose size the body bounds (it is sent back to the client).
// A template that parses must place every message's text in the prompt.
//
// Input: [u8 what: % 3 is completions, chat completions or a template file]
// [u8 limits: below 0x80 the server's defaults, else small ones from its
// bits, so that the limits are reached] [the body or file].
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "proto/joule.pb.h"
#include "proto/request_parser.h"
#include "scheduler/generation.h"
#include "server/chat_template.h"
#include "server/openai_request.h"

namespace {

using joule::server::ChatMessage;
using joule::server::ChatTemplate;
using joule::server::Endpoint;
using joule::server::OpenAiLimits;
using joule::server::OpenAiRequest;

bool Utf8(absl::string_view s) {
  return joule::v1::FirstInvalidUtf8(s) == absl::string_view::npos;
}

OpenAiLimits Limits(uint8_t b) {
  OpenAiLimits limits;
  if (b < 0x80) return limits;
  limits.max_prompts = 1 + (b & 3);
  limits.max_n = 1 + ((b >> 2) & 3);
  limits.max_choices = 1 + ((b >> 4) & 7);
  limits.max_messages = 1 + (b & 3);
  limits.max_user_bytes = b & 0x1F;
  return limits;
}

// Refusals reach the client as the error's message and param.
void CheckRefusal(const absl::Status& status, size_t input_size) {
  const size_t bound = 4096 + input_size;
  if (!absl::IsInvalidArgument(status) || status.message().empty() ||
      status.message().size() >= bound) {
    __builtin_trap();
  }
  const std::optional<std::string> param = joule::server::ErrorParam(status);
  if (param.has_value() && (param->empty() || param->size() >= bound))
    __builtin_trap();
}

// ParamFromMessage reads the shared validation's messages, which quote the
// client's text; whatever it names must be what the message starts with.
void CheckParamFromMessage(absl::string_view message) {
  const std::optional<std::string> p =
      joule::server::ParamFromMessage(message);
  if (!p.has_value() || *p == "device") return;
  if (!absl::StartsWith(message, *p)) __builtin_trap();
  const absl::string_view rest = message.substr(p->size());
  if (!rest.empty() && rest[0] != ' ' && rest[0] != '[') __builtin_trap();
}

void CheckAccepted(const OpenAiRequest& r, Endpoint endpoint,
                   const OpenAiLimits& limits) {
  const joule::v1::GenerateRequest& g = r.generation;
  bool sane = r.endpoint == endpoint && r.n >= 1 && r.n <= limits.max_n &&
              r.logprobs >= -1 && r.logprobs <= joule::scheduler::kMaxLogprobs &&
              g.has_logprobs() == (r.logprobs >= 0) &&
              (!g.has_logprobs() || g.logprobs() == r.logprobs) &&
              (!r.include_usage || r.stream) &&
              r.user.size() <= static_cast<size_t>(limits.max_user_bytes) &&
              g.prompt().empty() &&
              (!g.has_max_tokens() || g.max_tokens() >= 1) &&
              (!g.has_top_k() || g.top_k() >= 0) && g.priority() >= -10 &&
              g.priority() <= 10 && Utf8(r.model) && Utf8(r.user) &&
              Utf8(g.device()) && Utf8(g.request_id());
  for (const std::string& s : g.stop()) sane = sane && Utf8(s);
  size_t groups = 1;
  if (endpoint == Endpoint::kCompletions) {
    groups = r.prompts.size();
    sane = sane && !r.prompts.empty() &&
           r.prompts.size() <= static_cast<size_t>(limits.max_prompts) &&
           r.messages.empty() && !(r.echo && r.logprobs >= 0);
    for (const std::string& p : r.prompts) sane = sane && Utf8(p);
  } else {
    sane = sane && r.prompts.empty() && !r.messages.empty() &&
           r.messages.size() <= static_cast<size_t>(limits.max_messages) &&
           !r.echo;
    for (const ChatMessage& m : r.messages) {
      sane = sane &&
             (m.role == "system" || m.role == "user" ||
              m.role == "assistant") &&
             Utf8(m.content);
    }
  }
  sane = sane && groups * static_cast<size_t>(r.n) <=
                     static_cast<size_t>(limits.max_choices);
  if (!sane) __builtin_trap();
}

void CheckTemplate(absl::string_view text) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(text);
  if (!t.ok()) {
    CheckRefusal(t.status(), text.size());
    return;
  }
  // The user's text holds the placeholder itself: it must come out as
  // written, not be substituted again.
  const std::vector<ChatMessage> messages = {
      {"system", "Answer briefly."},
      {"user", "Is {content} caf\xc3\xa9?"},
      {"assistant", "It is a placeholder."},
      {"user", "Thanks"},
  };
  const std::string prompt = t->Render(messages);
  for (const ChatMessage& m : messages) {
    if (!absl::StrContains(prompt, m.content)) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const absl::string_view body(reinterpret_cast<const char*>(data + 2),
                               size - 2);
  CheckParamFromMessage(body);
  if (data[0] % 3 == 2) {
    CheckTemplate(body);
    return 0;
  }
  const Endpoint endpoint =
      data[0] % 3 == 0 ? Endpoint::kCompletions : Endpoint::kChatCompletions;
  const OpenAiLimits limits = Limits(data[1]);
  absl::StatusOr<OpenAiRequest> r =
      joule::server::ParseOpenAiRequest(endpoint, body, limits);
  if (r.ok()) {
    CheckAccepted(*r, endpoint, limits);
  } else {
    CheckRefusal(r.status(), body.size());
    CheckParamFromMessage(r.status().message());
  }
  return 0;
}
