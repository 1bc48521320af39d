#include "server/chat_template.h"

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"

namespace joule::server {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxFileBytes = 64 * 1024;

absl::StatusOr<std::string> Part(const json& doc, const char* key,
                                 bool required) {
  auto it = doc.find(key);
  if (it == doc.end()) {
    if (!required) return std::string();
    return absl::InvalidArgumentError(
        absl::StrCat("chat template: \"", key, "\" is missing"));
  }
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("chat template: \"", key, "\" must be a string"));
  }
  std::string s = it->get<std::string>();
  if (s.size() > ChatTemplate::kMaxBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("chat template: \"", key, "\" is ", s.size(),
                     " bytes; the limit is ", ChatTemplate::kMaxBytes));
  }
  // A role's string (the required keys) without the placeholder, say with
  // a typo such as "{contnet}", would silently leave every message of that
  // role out of the prompt.
  if (required && !absl::StrContains(s, "{content}")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chat template: \"", key,
        "\" has no {content}, so its messages would be left out"));
  }
  return s;
}

}  // namespace

ChatTemplate::ChatTemplate()
    : system_("System: {content}\n\n"),
      user_("User: {content}\n"),
      assistant_("Assistant: {content}\n"),
      generation_prompt_("Assistant:") {}

absl::StatusOr<ChatTemplate> ChatTemplate::Parse(absl::string_view text) {
  const json doc = json::parse(text.begin(), text.end(), nullptr,
                               /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(
        "chat template: not a JSON object with system, user and assistant "
        "strings");
  }
  for (const auto& [key, value] : doc.items()) {
    if (key != "system" && key != "user" && key != "assistant" &&
        key != "generation_prompt") {
      return absl::InvalidArgumentError(absl::StrCat(
          "chat template: unknown key \"", key,
          "\" (allowed: system, user, assistant, generation_prompt)"));
    }
  }
  ChatTemplate t;
  for (auto [key, out, required] :
       {std::make_tuple("system", &t.system_, true),
        std::make_tuple("user", &t.user_, true),
        std::make_tuple("assistant", &t.assistant_, true),
        std::make_tuple("generation_prompt", &t.generation_prompt_, false)}) {
    auto part = Part(doc, key, required);
    if (!part.ok()) return part.status();
    *out = *std::move(part);
  }
  return t;
}

absl::StatusOr<ChatTemplate> ChatTemplate::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("--chat_template: cannot read ", path));
  }
  std::string text(kMaxFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--chat_template: ", path, " is larger than ", kMaxFileBytes,
        " bytes"));
  }
  auto t = Parse(text);
  if (!t.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--chat_template ", path, ": ", t.status().message()));
  }
  return t;
}

std::string ChatTemplate::Render(
    const std::vector<ChatMessage>& messages) const {
  std::string out;
  for (const ChatMessage& m : messages) {
    const std::string& form = m.role == "system" ? system_
                              : m.role == "user" ? user_
                                                 : assistant_;
    out += absl::StrReplaceAll(form, {{"{content}", m.content}});
  }
  return out + generation_prompt_;
}

}  // namespace joule::server
