#include "server/openai_request.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "scheduler/generation.h"
#include "server/request_validation.h"

namespace joule::server {
namespace {

using json = nlohmann::json;

constexpr char kParamPayload[] = "joule.dev/param";

absl::Status Bad(absl::string_view param, absl::string_view message) {
  return WithParam(absl::InvalidArgumentError(message), param);
}

absl::Status WrongType(absl::string_view param, absl::string_view expected) {
  return Bad(param, absl::StrCat(param, " must be ", expected));
}

// A field, or null when absent or JSON null (OpenAI's SDKs send either for
// "unset").
const json* Field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::StatusOr<std::optional<int64_t>> Integer(const json& body,
                                               const char* name, int64_t lo,
                                               int64_t hi) {
  const json* v = Field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer()) return WrongType(name, "an integer");
  const bool too_big = v->is_number_unsigned() &&
                       v->get<uint64_t>() >
                           static_cast<uint64_t>(
                               std::numeric_limits<int64_t>::max());
  const int64_t x = too_big ? std::numeric_limits<int64_t>::max()
                            : v->get<int64_t>();
  if (too_big || x < lo || x > hi) {
    return Bad(name, absl::StrCat(name, " must be in ", lo, "..", hi,
                                  "; got ", v->dump()));
  }
  return x;
}

absl::StatusOr<std::optional<double>> Number(const json& body,
                                             const char* name) {
  const json* v = Field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) return WrongType(name, "a number");
  return v->get<double>();
}

absl::StatusOr<std::optional<bool>> Bool(const json& body, const char* name) {
  const json* v = Field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) return WrongType(name, "true or false");
  return v->get<bool>();
}

absl::StatusOr<std::optional<std::string>> String(const json& body,
                                                  const char* name) {
  const json* v = Field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) return WrongType(name, "a string");
  return v->get<std::string>();
}

// A string or a list of strings (`prompt`, `stop`).
absl::StatusOr<std::vector<std::string>> Strings(const json& v,
                                                 const char* name,
                                                 size_t max_items) {
  if (v.is_string()) return std::vector<std::string>{v.get<std::string>()};
  if (!v.is_array()) return WrongType(name, "a string or a list of strings");
  if (v.size() > max_items) {
    return Bad(name, absl::StrCat(name, " has ", v.size(),
                                  " entries; the limit is ", max_items));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) {
      return WrongType(absl::StrCat(name, "[", i, "]"),
                       v[i].is_number_integer()
                           ? "a string (token ids are not accepted: send text)"
                           : "a string");
    }
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

// Parameters Joule does not implement, refused unless they hold the value
// that means "off": a request that relies on them would silently get
// something else.
absl::Status RefuseUnsupported(const json& body) {
  struct Unsupported {
    const char* name;
    bool (*is_off)(const json&);
  };
  static constexpr Unsupported kUnsupported[] = {
      {"tools", [](const json& v) { return v.is_array() && v.empty(); }},
      {"tool_choice", [](const json& v) { return v == "none"; }},
      {"functions", [](const json& v) { return v.is_array() && v.empty(); }},
      {"function_call", [](const json& v) { return v == "none"; }},
      {"parallel_tool_calls", [](const json&) { return true; }},
      // find, not value("type", ""): that throws when "type" is no string.
      {"response_format",
       [](const json& v) {
         auto type = v.find("type");
         return v.is_object() && type != v.end() && *type == "text";
       }},
      {"logit_bias", [](const json& v) { return v.is_object() && v.empty(); }},
      {"presence_penalty", [](const json& v) { return v.is_number() && v == 0; }},
      {"frequency_penalty", [](const json& v) { return v.is_number() && v == 0; }},
      {"repetition_penalty", [](const json& v) { return v.is_number() && v == 1; }},
      {"min_p", [](const json& v) { return v.is_number() && v == 0; }},
      {"min_tokens", [](const json& v) { return v.is_number() && v == 0; }},
      {"best_of", [](const json& v) { return v.is_number() && v == 1; }},
      {"suffix", [](const json& v) { return v.is_string() && v.empty(); }},
      {"use_beam_search", [](const json& v) { return v == false; }},
      {"audio", [](const json&) { return false; }},
      {"modalities",
       [](const json& v) { return v == json::array({"text"}); }},
      {"prediction", [](const json&) { return false; }},
      {"reasoning_effort", [](const json&) { return false; }},
      {"web_search_options", [](const json&) { return false; }},
      {"guided_json", [](const json&) { return false; }},
      {"guided_regex", [](const json&) { return false; }},
      {"guided_choice", [](const json&) { return false; }},
      {"guided_grammar", [](const json&) { return false; }},
  };
  for (const Unsupported& u : kUnsupported) {
    const json* v = Field(body, u.name);
    if (v != nullptr && !u.is_off(*v)) {
      return Bad(u.name,
                 absl::StrCat(u.name,
                              " is not supported by Joule; remove it (see "
                              "docs/http_api.md for what is)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseSampling(const json& body, v1::GenerateRequest* g) {
  auto temperature = Number(body, "temperature");
  if (!temperature.ok()) return temperature.status();
  if (*temperature) g->set_temperature(static_cast<float>(**temperature));
  auto top_p = Number(body, "top_p");
  if (!top_p.ok()) return top_p.status();
  if (*top_p) g->set_top_p(static_cast<float>(**top_p));
  // vLLM's convention: -1 (or 0) is no limit.
  auto top_k = Integer(body, "top_k", -1, std::numeric_limits<int32_t>::max());
  if (!top_k.ok()) return top_k.status();
  if (*top_k) g->set_top_k(static_cast<int32_t>(std::max<int64_t>(0, **top_k)));
  auto seed = Integer(body, "seed", std::numeric_limits<int64_t>::min(),
                      std::numeric_limits<int64_t>::max());
  if (!seed.ok()) return seed.status();
  if (*seed) g->set_seed(static_cast<uint64_t>(**seed));
  return absl::OkStatus();
}

absl::Status ParseMaxTokens(const json& body, Endpoint endpoint,
                            v1::GenerateRequest* g) {
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  auto max_tokens = Integer(body, "max_tokens", 1, kMax);
  if (!max_tokens.ok()) return max_tokens.status();
  std::optional<int64_t> limit = *max_tokens;
  if (endpoint == Endpoint::kChatCompletions) {
    auto mct = Integer(body, "max_completion_tokens", 1, kMax);
    if (!mct.ok()) return mct.status();
    if (*mct && limit && **mct != *limit) {
      return Bad("max_completion_tokens",
                 "max_completion_tokens and max_tokens differ; send one");
    }
    if (*mct) limit = *mct;
  }
  if (limit) g->set_max_tokens(static_cast<int32_t>(*limit));
  return absl::OkStatus();
}

absl::Status ParseStop(const json& body, v1::GenerateRequest* g) {
  const json* stop = Field(body, "stop");
  if (stop == nullptr) return absl::OkStatus();
  // The count limit proper is the shared validation's; this one only
  // bounds the work before it.
  auto stops = Strings(*stop, "stop", 1024);
  if (!stops.ok()) return stops.status();
  for (std::string& s : *stops) g->add_stop(std::move(s));
  return absl::OkStatus();
}

// Joule's own fields, accepted beside OpenAI's.
absl::Status ParseExtensions(const json& body, v1::GenerateRequest* g) {
  auto device = String(body, "device");
  if (!device.ok()) return device.status();
  if (*device) g->set_device(**device);
  auto pin = Bool(body, "pin_device");
  if (!pin.ok()) return pin.status();
  if (*pin) g->set_pin_device(**pin);
  auto ignore_eos = Bool(body, "ignore_eos");
  if (!ignore_eos.ok()) return ignore_eos.status();
  if (*ignore_eos) g->set_ignore_eos(**ignore_eos);
  auto priority = Integer(body, "priority", -10, 10);
  if (!priority.ok()) return priority.status();
  if (*priority) g->set_priority(static_cast<int32_t>(**priority));
  auto id = String(body, "request_id");
  if (!id.ok()) return id.status();
  if (*id) g->set_request_id(**id);
  return absl::OkStatus();
}

absl::Status ParseStreaming(const json& body, OpenAiRequest* r) {
  auto stream = Bool(body, "stream");
  if (!stream.ok()) return stream.status();
  r->stream = stream->value_or(false);
  const json* options = Field(body, "stream_options");
  if (options == nullptr) return absl::OkStatus();
  if (!r->stream) {
    return Bad("stream_options",
               "stream_options is only allowed when stream is true");
  }
  if (!options->is_object()) return WrongType("stream_options", "an object");
  auto usage = Bool(*options, "include_usage");
  if (!usage.ok()) {
    return WithParam(usage.status(), "stream_options.include_usage");
  }
  r->include_usage = usage->value_or(false);
  return absl::OkStatus();
}

absl::Status ParseLogprobs(const json& body, OpenAiRequest* r) {
  const int max = scheduler::kMaxLogprobs;
  if (r->endpoint == Endpoint::kCompletions) {
    auto logprobs = Integer(body, "logprobs", 0, max);
    if (!logprobs.ok()) return logprobs.status();
    if (*logprobs) r->logprobs = static_cast<int>(**logprobs);
    return absl::OkStatus();
  }
  auto want = Bool(body, "logprobs");
  if (!want.ok()) return want.status();
  auto top = Integer(body, "top_logprobs", 0, max);
  if (!top.ok()) return top.status();
  if (*top && !want->value_or(false)) {
    return Bad("top_logprobs", "top_logprobs needs logprobs: true");
  }
  if (want->value_or(false)) r->logprobs = static_cast<int>(top->value_or(0));
  return absl::OkStatus();
}

absl::Status ParsePrompt(const json& body, const OpenAiLimits& limits,
                         OpenAiRequest* r) {
  const json* prompt = Field(body, "prompt");
  if (prompt == nullptr) {
    return Bad("prompt", "prompt is required (a string or a list of strings)");
  }
  auto prompts = Strings(*prompt, "prompt", limits.max_prompts);
  if (!prompts.ok()) return prompts.status();
  if (prompts->empty()) return Bad("prompt", "prompt is an empty list");
  r->prompts = *std::move(prompts);
  auto echo = Bool(body, "echo");
  if (!echo.ok()) return echo.status();
  r->echo = echo->value_or(false);
  if (r->echo && r->logprobs >= 0) {
    return Bad("echo",
               "echo with logprobs is not supported: it needs the prompt's "
               "log-probabilities, which Joule does not compute");
  }
  return absl::OkStatus();
}

// Message content: a string, or a list of {"type": "text", "text": ...}
// parts.
absl::StatusOr<std::string> Content(const json& v, const std::string& param) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) {
    return WrongType(param, "a string or a list of text parts");
  }
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string part = absl::StrCat(param, "[", i, "]");
    // find, not value("type", json()): that copies "type", and a copy
    // recurses once per level of nesting, which a body can make deep
    // enough to overflow the stack.
    auto type = v[i].find("type");
    if (!v[i].is_object() || type == v[i].end() || *type != "text" ||
        !v[i].contains("text") || !v[i]["text"].is_string()) {
      return Bad(part, absl::StrCat(part,
                                    " must be {\"type\": \"text\", \"text\": "
                                    "...}; Joule serves a text-only model"));
    }
    out += v[i]["text"].get<std::string>();
  }
  return out;
}

absl::StatusOr<ChatMessage> Message(const json& v, size_t i) {
  const std::string param = absl::StrCat("messages[", i, "]");
  if (!v.is_object()) return WrongType(param, "an object");
  const json* role = Field(v, "role");
  if (role == nullptr || !role->is_string()) {
    return Bad(param + ".role", param + ".role must be a string");
  }
  ChatMessage m;
  m.role = role->get<std::string>();
  if (m.role == "developer") m.role = "system";
  if (m.role != "system" && m.role != "user" && m.role != "assistant") {
    return Bad(param + ".role",
               absl::StrCat(param, ".role '", role->get<std::string>(),
                            "' is not supported: use system, developer, user "
                            "or assistant (Joule has no tools)"));
  }
  const json* content = Field(v, "content");
  if (content == nullptr) {
    return Bad(param + ".content", param + ".content is required");
  }
  auto text = Content(*content, param + ".content");
  if (!text.ok()) return text.status();
  m.content = *std::move(text);
  return m;
}

absl::Status ParseMessages(const json& body, const OpenAiLimits& limits,
                           OpenAiRequest* r) {
  const json* messages = Field(body, "messages");
  if (messages == nullptr || !messages->is_array() || messages->empty()) {
    return Bad("messages", "messages must be a non-empty list of messages");
  }
  if (messages->size() > static_cast<size_t>(limits.max_messages)) {
    return Bad("messages", absl::StrCat("messages has ", messages->size(),
                                        " entries; the limit is ",
                                        limits.max_messages));
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    auto m = Message((*messages)[i], i);
    if (!m.ok()) return m.status();
    r->messages.push_back(*std::move(m));
  }
  return absl::OkStatus();
}

absl::Status ParseCommon(const json& body, const OpenAiLimits& limits,
                         OpenAiRequest* r) {
  const json* model = Field(body, "model");
  if (model == nullptr || !model->is_string()) {
    return Bad("model",
               "model is required: the served model's id (GET /v1/models)");
  }
  r->model = model->get<std::string>();
  auto n = Integer(body, "n", 1, limits.max_n);
  if (!n.ok()) return n.status();
  r->n = static_cast<int>(n->value_or(1));
  auto user = String(body, "user");
  if (!user.ok()) return user.status();
  r->user = user->value_or("");
  if (r->user.size() > static_cast<size_t>(limits.max_user_bytes)) {
    return Bad("user", absl::StrCat("user is ", r->user.size(),
                                    " bytes; the limit is ",
                                    limits.max_user_bytes));
  }
  if (FirstControlCharacter(r->user) != absl::string_view::npos) {
    return Bad("user",
               "user has a control character; use printable text (it is "
               "written to logs)");
  }
  for (absl::Status s :
       {RefuseUnsupported(body), ParseStreaming(body, r),
        ParseLogprobs(body, r), ParseSampling(body, &r->generation),
        ParseMaxTokens(body, r->endpoint, &r->generation),
        ParseStop(body, &r->generation),
        ParseExtensions(body, &r->generation)}) {
    if (!s.ok()) return s;
  }
  if (r->logprobs >= 0) r->generation.set_logprobs(r->logprobs);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(Endpoint endpoint,
                                                 absl::string_view body,
                                                 const OpenAiLimits& limits) {
  const json doc = json::parse(body.begin(), body.end(), nullptr,
                               /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError(
        "the request body is not valid JSON (UTF-8); send a JSON object");
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError("the request body must be a JSON object");
  }
  OpenAiRequest r;
  r.endpoint = endpoint;
  if (absl::Status s = ParseCommon(doc, limits, &r); !s.ok()) return s;
  if (endpoint == Endpoint::kCompletions) {
    if (absl::Status s = ParsePrompt(doc, limits, &r); !s.ok()) return s;
  } else if (absl::Status s = ParseMessages(doc, limits, &r); !s.ok()) {
    return s;
  }
  const size_t groups = endpoint == Endpoint::kCompletions ? r.prompts.size() : 1;
  if (groups * static_cast<size_t>(r.n) >
      static_cast<size_t>(limits.max_choices)) {
    return Bad("n", absl::StrCat(groups, " prompts times n=", r.n,
                                 " is more than ", limits.max_choices,
                                 " choices; split the request"));
  }
  return r;
}

std::optional<std::string> ErrorParam(const absl::Status& status) {
  absl::optional<absl::Cord> p = status.GetPayload(kParamPayload);
  if (!p.has_value()) return std::nullopt;
  return std::string(*p);
}

absl::Status WithParam(absl::Status status, absl::string_view param) {
  status.SetPayload(kParamPayload, absl::Cord(param));
  return status;
}

std::optional<std::string> ParamFromMessage(absl::string_view message) {
  static constexpr const char* kFields[] = {
      "max_tokens", "temperature", "top_p", "top_k", "stop", "prompt",
      "pin_device", "priority", "request_id", "logprobs"};
  if (absl::StartsWith(message, "unknown device")) return "device";
  const size_t end = message.find_first_of(" [");
  const absl::string_view head = message.substr(0, end);
  for (const char* f : kFields) {
    if (head == f) return std::string(f);
  }
  return std::nullopt;
}

}  // namespace joule::server
