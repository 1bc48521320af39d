#include "server/openai_api.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace joule::server {
namespace {

// How often a streaming handler wakes without news, and how long a stream
// may stay silent before it sends an SSE comment: a client that went away
// while its request waited for a device is noticed by that write.
constexpr absl::Duration kPoll = absl::Milliseconds(250);
constexpr absl::Duration kKeepAlive = absl::Seconds(1);

std::string Event(const Json& j) {
  return absl::StrCat("data: ", Dump(j), "\n\n");
}

}  // namespace

HttpReply ErrorReply(const absl::Status& status) {
  const int http = HttpStatusOf(status);
  std::optional<std::string> param = ErrorParam(status);
  if (!param.has_value() && http == 400) {
    param = ParamFromMessage(status.message());
  }
  const char* code = http == 404 ? "model_not_found" : "";
  return {http, Dump(ErrorBody(http, status.message(), param, code))};
}

struct CompletionJob::Choice {
  std::unique_ptr<RunningGeneration> gen;
  int group = 0;
  std::string text;
  std::vector<v1::Token> tokens;  // Kept for logprobs.
  size_t sent_bytes = 0;          // Text offset of the next streamed token.
  bool done = false;
  v1::GenerationSummary summary;
};

CompletionJob::CompletionJob(
    OpenAiRequest request, std::string model,
    std::vector<std::unique_ptr<RunningGeneration>> gens,
    std::vector<int> group_prompt_tokens, std::shared_ptr<Wakeup> wakeup)
    : request_(std::move(request)),
      model_(std::move(model)),
      id_(absl::StrFormat(
          "%s-%016x",
          request_.endpoint == Endpoint::kCompletions ? "cmpl" : "chatcmpl",
          RandomU64())),
      created_(absl::ToUnixSeconds(absl::Now())),
      group_prompt_tokens_(std::move(group_prompt_tokens)),
      wakeup_(std::move(wakeup)) {
  choices_.resize(gens.size());
  for (size_t i = 0; i < gens.size(); ++i) {
    choices_[i].gen = std::move(gens[i]);
    choices_[i].group = static_cast<int>(i) / request_.n;
  }
}

CompletionJob::~CompletionJob() { CancelAll(); }

void CompletionJob::CancelAll() {
  for (Choice& c : choices_) {
    if (!c.done) c.gen->Cancel();
  }
}

bool CompletionJob::AllDone() const {
  for (const Choice& c : choices_) {
    if (!c.done) return false;
  }
  return true;
}

void CompletionJob::Record(int index, const scheduler::FinishEvent& f) {
  if (index != 0) return;
  outcome_.device = f.device;
  if (f.first_token_time != absl::InfinitePast()) {
    outcome_.ttft = f.first_token_time - choices_[0].gen->arrival();
  }
  if (!f.device.empty()) outcome_.queue = f.queue_time;
}

bool CompletionJob::Poll(
    const std::function<bool(int, const v1::Token&)>& on_token,
    const std::function<bool(int)>& on_finish) {
  for (size_t i = 0; i < choices_.size(); ++i) {
    Choice& c = choices_[i];
    if (c.done) continue;
    std::vector<v1::Token> tokens;
    std::optional<scheduler::FinishEvent> finish;
    c.gen->Take(&tokens, &finish);
    for (v1::Token& t : tokens) {
      if (!on_token(static_cast<int>(i), t)) return false;
      c.text += t.text();
      if (request_.logprobs >= 0) c.tokens.push_back(std::move(t));
    }
    if (!finish.has_value()) continue;
    c.done = true;
    Record(static_cast<int>(i), *finish);
    absl::Status s = c.gen->Summarize(*finish, &c.summary);
    if (!s.ok()) {
      if (!error_.has_value()) error_ = s;
      continue;
    }
    if (!on_finish(static_cast<int>(i))) return false;
  }
  return true;
}

Json CompletionJob::ChunkBase() const {
  Json j = {{"id", id_},
            {"object", request_.endpoint == Endpoint::kCompletions
                           ? "text_completion"
                           : "chat.completion.chunk"},
            {"created", created_},
            {"model", model_}};
  if (request_.include_usage) j["usage"] = nullptr;
  return j;
}

Json CompletionJob::ChoiceChunk(int index, std::string text,
                                const std::vector<v1::Token>& tokens) const {
  Json choice = {{"index", index}, {"finish_reason", nullptr}};
  if (request_.endpoint == Endpoint::kCompletions) {
    choice["text"] = std::move(text);
  } else {
    choice["delta"] = {{"content", std::move(text)}};
  }
  choice["logprobs"] =
      request_.logprobs >= 0 && !tokens.empty()
          ? Logprobs(request_.endpoint, tokens, choices_[index].sent_bytes)
          : Json();
  Json j = ChunkBase();
  j["choices"] = Json::array({std::move(choice)});
  if (tokens.size() == 1) j["joule"] = TokenJoule(tokens[0]);
  return j;
}

Json CompletionJob::FinishChunk(int index) const {
  const v1::GenerationSummary& s = choices_[index].summary;
  Json choice = {{"index", index},
                 {"logprobs", nullptr},
                 {"finish_reason", FinishReason(s)}};
  if (request_.endpoint == Endpoint::kCompletions) {
    choice["text"] = "";
  } else {
    choice["delta"] = Json::object();
  }
  Json j = ChunkBase();
  j["choices"] = Json::array({std::move(choice)});
  j["joule"] = SummaryJoule(s);
  return j;
}

Json CompletionJob::Response() const {
  const bool chat = request_.endpoint == Endpoint::kChatCompletions;
  Json choices = Json::array();
  std::vector<v1::GenerationSummary> summaries;
  int prompt_tokens = 0, completion_tokens = 0;
  for (int p : group_prompt_tokens_) prompt_tokens += p;
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    const std::string echo =
        request_.echo ? request_.prompts[c.group] : std::string();
    Json choice = {{"index", i},
                   {"finish_reason", FinishReason(c.summary)},
                   {"joule", SummaryJoule(c.summary)}};
    choice["logprobs"] =
        request_.logprobs >= 0
            ? Logprobs(request_.endpoint, c.tokens, echo.size())
            : Json();
    if (chat) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    } else {
      choice["text"] = echo + c.text;
    }
    choices.push_back(std::move(choice));
    summaries.push_back(c.summary);
    completion_tokens += c.summary.completion_tokens();
  }
  return {{"id", id_},
          {"object", chat ? "chat.completion" : "text_completion"},
          {"created", created_},
          {"model", model_},
          {"choices", std::move(choices)},
          {"usage", Usage(prompt_tokens, completion_tokens)},
          {"joule", RequestJoule(summaries)}};
}

HttpReply CompletionJob::RunToEnd() {
  auto keep = [](int, const v1::Token&) { return true; };
  auto finished = [](int) { return true; };
  while (true) {
    wakeup_->Wait(kPoll);
    Poll(keep, finished);
    if (error_.has_value()) {
      CancelAll();
      HttpReply reply = ErrorReply(*error_);
      outcome_.status = reply.status;
      return reply;
    }
    if (AllDone()) return {200, Dump(Response())};
  }
}

void CompletionJob::Stream(
    const std::function<bool(absl::string_view)>& write) {
  absl::Time last_write = absl::Now();
  auto send = [&](const std::string& data) {
    last_write = absl::Now();
    return write(data);
  };
  auto gone = [&] {
    CancelAll();
    outcome_.status = 499;
  };
  for (size_t i = 0; i < choices_.size(); ++i) {
    // The chat stream's first delta carries the role; an echoed prompt
    // comes before any generated text.
    std::string first;
    if (request_.endpoint == Endpoint::kChatCompletions) {
      Json j = ChoiceChunk(static_cast<int>(i), "", {});
      j["choices"][0]["delta"]["role"] = "assistant";
      first = Event(j);
    } else if (request_.echo) {
      first = Event(ChoiceChunk(static_cast<int>(i),
                                request_.prompts[choices_[i].group], {}));
      choices_[i].sent_bytes = request_.prompts[choices_[i].group].size();
    }
    if (!first.empty() && !send(first)) return gone();
  }
  auto on_token = [&](int i, const v1::Token& t) {
    const bool ok = send(Event(ChoiceChunk(i, t.text(), {t})));
    choices_[i].sent_bytes += t.text().size();
    return ok;
  };
  auto on_finish = [&](int i) { return send(Event(FinishChunk(i))); };
  while (true) {
    wakeup_->Wait(kPoll);
    if (!Poll(on_token, on_finish)) return gone();
    if (error_.has_value()) {
      // Headers (200) are out: the error travels as an event.
      CancelAll();
      const HttpReply reply = ErrorReply(*error_);
      outcome_.status = reply.status;
      send(absl::StrCat("data: ", reply.body, "\n\n"));
      send("data: [DONE]\n\n");
      return;
    }
    if (AllDone()) break;
    if (absl::Now() - last_write >= kKeepAlive && !send(": keep-alive\n\n")) {
      return gone();
    }
  }
  if (request_.include_usage) {
    const Json full = Response();
    Json j = ChunkBase();
    j["choices"] = Json::array();
    j["usage"] = full["usage"];
    j["joule"] = full["joule"];
    if (!send(Event(j))) return gone();
  }
  send("data: [DONE]\n\n");
}

OpenAiApi::OpenAiApi(GenerationRunner* runner, ChatTemplate chat_template,
                     OpenAiLimits limits)
    : runner_(*runner),
      template_(std::move(chat_template)),
      limits_(limits),
      model_(ModelName(runner->checkpoint())),
      created_(absl::ToUnixSeconds(absl::Now())) {}

std::vector<v1::GenerateRequest> OpenAiApi::ChoiceRequests(
    const OpenAiRequest& r) const {
  std::vector<std::string> prompts = r.prompts;
  if (r.endpoint == Endpoint::kChatCompletions) {
    prompts = {template_.Render(r.messages)};
  }
  std::vector<v1::GenerateRequest> out;
  for (const std::string& prompt : prompts) {
    for (int j = 0; j < r.n; ++j) {
      v1::GenerateRequest g = r.generation;
      g.set_prompt(prompt);
      // Samples of one prompt differ by seed; a request's seed still
      // replays all of them.
      if (g.has_seed()) g.set_seed(g.seed() + static_cast<uint64_t>(j));
      if (!g.request_id().empty() && out.size() > 0) {
        g.set_request_id(absl::StrCat(g.request_id(), "-", out.size()));
      }
      out.push_back(std::move(g));
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<CompletionJob>> OpenAiApi::Start(
    Endpoint endpoint, absl::string_view body, absl::Time arrival) {
  auto parsed = ParseOpenAiRequest(endpoint, body, limits_);
  if (!parsed.ok()) return parsed.status();
  if (parsed->model != model_) {
    return WithParam(
        absl::NotFoundError(absl::StrCat("model '", parsed->model,
                                         "' is not served here; this server "
                                         "serves '",
                                         model_, "' (GET /v1/models)")),
        "model");
  }
  auto wakeup = std::make_shared<Wakeup>();
  std::vector<std::unique_ptr<RunningGeneration>> gens;
  std::vector<int> group_prompt_tokens;
  for (const v1::GenerateRequest& g : ChoiceRequests(*parsed)) {
    auto gen = runner_.Start(g, arrival, absl::InfiniteFuture(), wakeup);
    if (!gen.ok()) {
      for (auto& started : gens) started->Cancel();
      absl::Status s = gen.status();
      if (endpoint == Endpoint::kChatCompletions &&
          ParamFromMessage(s.message()) == "prompt") {
        s = WithParam(s, "messages");
      }
      return s;
    }
    if (gens.size() % parsed->n == 0) {
      group_prompt_tokens.push_back((*gen)->prompt_tokens());
    }
    gens.push_back(*std::move(gen));
  }
  if (!parsed->user.empty()) {
    spdlog::info("request {} ({} choice(s)) is from user '{}'",
                 gens.front()->id(), gens.size(), parsed->user);
  }
  return std::make_unique<CompletionJob>(
      *std::move(parsed), model_, std::move(gens),
      std::move(group_prompt_tokens), std::move(wakeup));
}

HttpReply OpenAiApi::Models() const {
  const model::Checkpoint& ckpt = runner_.checkpoint();
  const model::Config& c = ckpt.config();
  Json devices = Json::array();
  for (const auto& d : runner_.scheduler().Devices()) {
    devices.push_back({{"name", d.capabilities.name},
                       {"healthy", d.healthy},
                       {"precision", d.capabilities.precision}});
  }
  Json shape = {
      {"architecture", "llama2"},
      {"file_format", ckpt.gguf() != nullptr ? "gguf" : "llama2.c"},
      {"checkpoint_version", ckpt.version()},
      {"weight_format", model::WeightFormatName(ckpt.format())},
      {"dim", c.dim},
      {"hidden_dim", c.hidden_dim},
      {"n_layers", c.n_layers},
      {"n_heads", c.n_heads},
      {"n_kv_heads", c.n_kv_heads},
      {"vocab_size", c.vocab_size},
      {"max_context", c.seq_len},
      {"parameters", c.ParameterCount()},
      {"devices", std::move(devices)},
      {"server_instance", runner_.instance()},
  };
  Json model = {{"id", model_},
                {"object", "model"},
                {"created", created_},
                {"owned_by", "joule"},
                {"max_model_len", c.seq_len},
                {"joule", std::move(shape)}};
  return {200, Dump({{"object", "list"}, {"data", Json::array({model})}})};
}

bool OpenAiApi::AnyDeviceHealthy() const {
  for (const auto& d : runner_.scheduler().Devices()) {
    if (d.healthy) return true;
  }
  return false;
}

}  // namespace joule::server
