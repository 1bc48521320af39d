#ifndef JOULE_SERVER_OPENAI_RESPONSE_H_
#define JOULE_SERVER_OPENAI_RESPONSE_H_

// The OpenAI-compatible response objects, plus Joule's `joule` extension
// carrying each token's and each request's energy and latency (documented
// in docs/http_api.md). Pure functions of the generation's results.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "proto/joule.pb.h"
#include "server/openai_request.h"

namespace joule::server {

using Json = nlohmann::ordered_json;

// Serializes without ever throwing: invalid UTF-8 (a token that is one
// byte of a character) becomes U+FFFD.
std::string Dump(const Json& j);

// {"error": {"message", "type", "param", "code"}}.
Json ErrorBody(int http_status, absl::string_view message,
               const std::optional<std::string>& param,
               absl::string_view code = "");

// The HTTP status for an error from parsing, validation or the scheduler.
int HttpStatusOf(const absl::Status& status);

// A token's joule object: its device, energy (null where unknown), the
// source of that figure, and its latency.
Json TokenJoule(const v1::Token& token);
// One generation's summary as a joule object.
Json SummaryJoule(const v1::GenerationSummary& summary);
// Several choices' summaries combined: energy and tokens summed, the
// earliest first token, the longest queue and total time.
Json RequestJoule(const std::vector<v1::GenerationSummary>& summaries);

// "stop" (end of sequence or a stop sequence) or "length".
const char* FinishReason(const v1::GenerationSummary& summary);

Json Usage(int prompt_tokens, int completion_tokens);

// Log-probabilities of `tokens`, in the endpoint's shape: completions'
// {tokens, token_logprobs, top_logprobs, text_offset} (text offsets
// counted from `offset`) or chat's {content: [...]}.
Json Logprobs(Endpoint endpoint, const std::vector<v1::Token>& tokens,
              size_t offset);

}  // namespace joule::server

#endif  // JOULE_SERVER_OPENAI_RESPONSE_H_
