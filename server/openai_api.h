#ifndef JOULE_SERVER_OPENAI_API_H_
#define JOULE_SERVER_OPENAI_API_H_

// The OpenAI-compatible endpoints' logic, free of the HTTP library: a
// request body in, a reply or a stream of server-sent events out.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/chat_template.h"
#include "server/generation_runner.h"
#include "server/openai_request.h"
#include "server/openai_response.h"

namespace joule::server {

struct HttpReply {
  int status = 200;
  std::string body;  // JSON.
};

// An error reply in OpenAI's shape; the parameter is taken from the
// status's payload or, for the shared validation's errors, its message.
HttpReply ErrorReply(const absl::Status& status);

// What a finished call's metrics need.
struct CallOutcome {
  int status = 200;
  std::string device;
  std::optional<absl::Duration> ttft;
  std::optional<absl::Duration> queue;
};

// An accepted completion: its generations are submitted and running.
// Destroying it cancels the ones still running.
class CompletionJob {
 public:
  CompletionJob(OpenAiRequest request, std::string model,
                std::vector<std::unique_ptr<RunningGeneration>> gens,
                std::vector<int> group_prompt_tokens,
                std::shared_ptr<Wakeup> wakeup);
  ~CompletionJob();

  bool streaming() const { return request_.stream; }
  // Waits for every choice and returns the whole response.
  HttpReply RunToEnd();
  // Sends the response as server-sent events through `write`, which
  // returns false once the client can no longer be written to: then every
  // choice is cancelled at once and Stream returns.
  void Stream(const std::function<bool(absl::string_view)>& write);

  const CallOutcome& outcome() const { return outcome_; }

 private:
  struct Choice;
  // Takes what each running choice has ready; calls on_token for each new
  // token and on_finish once per choice, when it ends. Returns false when
  // a callback did (the client is gone).
  bool Poll(const std::function<bool(int, const v1::Token&)>& on_token,
            const std::function<bool(int)>& on_finish);
  bool AllDone() const;
  void CancelAll();
  Json ChunkBase() const;
  Json ChoiceChunk(int index, std::string text,
                   const std::vector<v1::Token>& tokens) const;
  Json FinishChunk(int index) const;
  Json Response() const;
  void Record(int index, const scheduler::FinishEvent& finish);

  const OpenAiRequest request_;
  const std::string model_;
  const std::string id_;
  const int64_t created_;
  std::vector<Choice> choices_;
  std::vector<int> group_prompt_tokens_;
  std::shared_ptr<Wakeup> wakeup_;
  CallOutcome outcome_;
  std::optional<absl::Status> error_;
};

class OpenAiApi {
 public:
  // `runner` must outlive this.
  OpenAiApi(GenerationRunner* runner, ChatTemplate chat_template,
            OpenAiLimits limits = {});

  // Parses `body` and submits its choices; an error is the reply to send.
  absl::StatusOr<std::unique_ptr<CompletionJob>> Start(Endpoint endpoint,
                                                       absl::string_view body,
                                                       absl::Time arrival);

  // GET /v1/models.
  HttpReply Models() const;
  // True while any device is healthy.
  bool AnyDeviceHealthy() const;
  const std::string& model_name() const { return model_; }

 private:
  std::vector<v1::GenerateRequest> ChoiceRequests(
      const OpenAiRequest& request) const;

  GenerationRunner& runner_;
  const ChatTemplate template_;
  const OpenAiLimits limits_;
  const std::string model_;
  const int64_t created_;
};

}  // namespace joule::server

#endif  // JOULE_SERVER_OPENAI_API_H_
