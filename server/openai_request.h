#ifndef JOULE_SERVER_OPENAI_REQUEST_H_
#define JOULE_SERVER_OPENAI_REQUEST_H_

// The OpenAI-compatible request bodies (/v1/completions,
// /v1/chat/completions) parsed into what Joule runs: a v1::GenerateRequest
// per choice. Every field is type-checked; parameters Joule does not
// implement are refused by name, never ignored; unknown fields are ignored,
// as OpenAI's SDKs expect. docs/http_api.md documents the mapping.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/joule.pb.h"

namespace joule::server {

enum class Endpoint { kCompletions, kChatCompletions };

struct ChatMessage {
  std::string role;  // system, user or assistant ("developer" is system).
  std::string content;
};

struct OpenAiLimits {
  int max_prompts = 64;   // Entries of a `prompt` list.
  int max_n = 16;         // Samples per prompt.
  int max_choices = 64;   // Prompts times n.
  int max_messages = 256;
  int max_user_bytes = 256;
};

struct OpenAiRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;
  // Completions: one choice group per prompt. Chat: empty (see messages).
  std::vector<std::string> prompts;
  std::vector<ChatMessage> messages;
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // Alternatives per token to report: -1 none, else the chosen token's
  // log-probability and this many alternatives (completions: `logprobs`;
  // chat: `logprobs: true` with `top_logprobs`).
  int logprobs = -1;
  bool echo = false;
  std::string user;
  // Sampling, stop sequences, max_tokens and Joule's extensions; `prompt`
  // is left empty and filled per choice.
  v1::GenerateRequest generation;
};

// Parses and checks `body`. Errors are INVALID_ARGUMENT with a message
// saying what to fix and, where one field is at fault, its name as the
// payload ErrorParam reads.
absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(Endpoint endpoint,
                                                 absl::string_view body,
                                                 const OpenAiLimits& limits);

// The request parameter an error is about ("temperature",
// "messages[1].content"), if one is.
std::optional<std::string> ErrorParam(const absl::Status& status);
absl::Status WithParam(absl::Status status, absl::string_view param);

// For errors of the shared validation (server/request_validation.h), whose
// messages start with the field's name: that name, mapped to the HTTP API's
// spelling.
std::optional<std::string> ParamFromMessage(absl::string_view message);

}  // namespace joule::server

#endif  // JOULE_SERVER_OPENAI_REQUEST_H_
