#ifndef JOULE_SERVER_CHAT_TEMPLATE_H_
#define JOULE_SERVER_CHAT_TEMPLATE_H_

// How /v1/chat/completions turns messages into the prompt the model
// continues. llama2.c checkpoints carry no chat template, so Joule ships a
// plain one and reads others from a small JSON file (--chat_template):
//
//   {"system": "<<SYS>>{content}<</SYS>>\n", "user": "[INST] {content} [/INST]",
//    "assistant": " {content} ", "generation_prompt": ""}
//
// Each message is its role's string with every "{content}" replaced by the
// message's text; the rendered messages are concatenated and
// generation_prompt appended (where the assistant's reply begins).
// docs/http_api.md has the default and an example for Llama 2 chat models.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/openai_request.h"

namespace joule::server {

class ChatTemplate {
 public:
  // The plain default: "System: ...\n\n", "User: ...\n",
  // "Assistant: ...\n", then "Assistant:".
  ChatTemplate();

  // From the JSON text of a template file: an object with exactly the keys
  // system, user, assistant (strings, each with at most kMaxBytes bytes and
  // each containing "{content}", else that role's messages would vanish)
  // and optionally generation_prompt. Errors say what is wrong.
  static absl::StatusOr<ChatTemplate> Parse(absl::string_view json_text);
  // Reads and parses `path` (at most 64 KiB).
  static absl::StatusOr<ChatTemplate> Load(const std::string& path);

  std::string Render(const std::vector<ChatMessage>& messages) const;

  static constexpr size_t kMaxBytes = 4096;

 private:
  std::string system_;
  std::string user_;
  std::string assistant_;
  std::string generation_prompt_;
};

}  // namespace joule::server

#endif  // JOULE_SERVER_CHAT_TEMPLATE_H_
