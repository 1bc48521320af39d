#include "server/openai_response.h"

#include <algorithm>

#include "proto/status_names.h"

namespace joule::server {
namespace {

Json OrNull(bool has, double value) { return has ? Json(value) : Json(); }

Json Bytes(const std::string& s) {
  Json out = Json::array();
  for (unsigned char c : s) out.push_back(static_cast<int>(c));
  return out;
}

Json CompletionLogprobs(const std::vector<v1::Token>& tokens, size_t offset) {
  Json out = {{"tokens", Json::array()},
              {"token_logprobs", Json::array()},
              {"top_logprobs", Json::array()},
              {"text_offset", Json::array()}};
  for (const v1::Token& t : tokens) {
    out["tokens"].push_back(t.piece());
    out["token_logprobs"].push_back(OrNull(t.has_logprob(), t.logprob()));
    Json top = Json::object();
    for (const v1::TokenLogprob& alt : t.top_logprobs()) {
      // Two ids can decode to the same text; the likelier one is listed
      // first and kept.
      if (!top.contains(alt.text())) top[alt.text()] = alt.logprob();
    }
    out["top_logprobs"].push_back(std::move(top));
    out["text_offset"].push_back(offset);
    offset += t.text().size();
  }
  return out;
}

Json ChatLogprobs(const std::vector<v1::Token>& tokens) {
  Json content = Json::array();
  for (const v1::Token& t : tokens) {
    Json top = Json::array();
    for (const v1::TokenLogprob& alt : t.top_logprobs()) {
      top.push_back({{"token", alt.text()},
                     {"logprob", alt.logprob()},
                     {"bytes", Bytes(alt.text())}});
    }
    content.push_back({{"token", t.piece()},
                       {"logprob", OrNull(t.has_logprob(), t.logprob())},
                       {"bytes", Bytes(t.piece())},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}};
}

}  // namespace

std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json ErrorBody(int http_status, absl::string_view message,
               const std::optional<std::string>& param,
               absl::string_view code) {
  const char* type = http_status == 401   ? "authentication_error"
                     : http_status == 429 ? "rate_limit_error"
                     : http_status >= 500 ? "server_error"
                                          : "invalid_request_error";
  return {{"error",
           {{"message", std::string(message)},
            {"type", type},
            {"param", param.has_value() ? Json(*param) : Json()},
            {"code", code.empty() ? Json() : Json(std::string(code))}}}};
}

int HttpStatusOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;  // The client went away (nginx's convention).
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

Json TokenJoule(const v1::Token& t) {
  return {{"token_id", t.id()},
          {"device", t.device()},
          {"energy_joules", OrNull(t.has_energy_joules(), t.energy_joules())},
          {"energy_source", proto::EnergySourceName(t.energy_source())},
          {"latency_seconds", t.latency_seconds()}};
}

Json SummaryJoule(const v1::GenerationSummary& s) {
  return {
      {"device", s.device()},
      {"energy_joules", OrNull(s.has_energy_joules(), s.energy_joules())},
      {"joules_per_token",
       OrNull(s.has_joules_per_token(), s.joules_per_token())},
      {"energy_source", proto::EnergySourceName(s.energy_source())},
      {"time_to_first_token_seconds", s.time_to_first_token_seconds()},
      {"mean_inter_token_latency_seconds",
       s.mean_inter_token_latency_seconds()},
      {"queue_seconds", s.queue_seconds()},
      {"prefill_seconds", s.prefill_seconds()},
      {"decode_seconds", s.decode_seconds()},
      {"total_seconds", s.total_seconds()},
      {"preemptions", s.preemptions()},
      {"failovers", s.failovers()},
      {"seed", s.seed()},
      {"request_id", s.request_id()},
      {"server_instance", s.server_instance()},
  };
}

Json RequestJoule(const std::vector<v1::GenerationSummary>& summaries) {
  if (summaries.size() == 1) return SummaryJoule(summaries[0]);
  double joules = 0, ttft = 0, queue = 0, total = 0;
  int tokens = 0, preemptions = 0, failovers = 0;
  bool known = !summaries.empty();
  Json devices = Json::array();
  for (size_t i = 0; i < summaries.size(); ++i) {
    const v1::GenerationSummary& s = summaries[i];
    known = known && s.has_energy_joules();
    joules += s.energy_joules();
    tokens += s.completion_tokens();
    ttft = i == 0 ? s.time_to_first_token_seconds()
                  : std::min(ttft, s.time_to_first_token_seconds());
    queue = std::max(queue, s.queue_seconds());
    total = std::max(total, s.total_seconds());
    preemptions += s.preemptions();
    failovers += s.failovers();
    if (std::find(devices.begin(), devices.end(), s.device()) ==
        devices.end()) {
      devices.push_back(s.device());
    }
  }
  return {
      {"devices", std::move(devices)},
      {"energy_joules", OrNull(known, joules)},
      {"joules_per_token", OrNull(known && tokens > 0, joules / tokens)},
      {"energy_source",
       summaries.empty()
           ? "unknown"
           : proto::EnergySourceName(summaries[0].energy_source())},
      {"time_to_first_token_seconds", ttft},
      {"queue_seconds", queue},
      {"total_seconds", total},
      {"preemptions", preemptions},
      {"failovers", failovers},
      {"server_instance",
       summaries.empty() ? "" : summaries[0].server_instance()},
  };
}

const char* FinishReason(const v1::GenerationSummary& s) {
  return s.stop_reason() == v1::STOP_REASON_LENGTH ? "length" : "stop";
}

Json Usage(int prompt_tokens, int completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

Json Logprobs(Endpoint endpoint, const std::vector<v1::Token>& tokens,
              size_t offset) {
  return endpoint == Endpoint::kCompletions ? CompletionLogprobs(tokens, offset)
                                            : ChatLogprobs(tokens);
}

}  // namespace joule::server
