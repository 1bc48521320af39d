#ifndef JOULE_SERVER_TEXT_STREAM_H_
#define JOULE_SERVER_TEXT_STREAM_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace joule::server {

// Turns the bytes of generated tokens into text that is safe to send:
// - never splits a UTF-8 character (byte-fallback tokens arrive a byte at a
//   time); invalid bytes become U+FFFD, so every piece is valid UTF-8;
// - holds back text that may be the start of a stop sequence, and ends at
//   the first stop sequence without releasing it.
class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop_sequences);

  // Adds a token's bytes; returns the text released by them (maybe empty).
  std::string Append(absl::string_view bytes);

  // Releases everything held, an incomplete trailing character as U+FFFD.
  std::string Flush();

  // A stop sequence was found; Append releases nothing more.
  bool stopped() const { return !matched_.empty(); }
  const std::string& matched_stop() const { return matched_; }

 private:
  // Moves the complete characters of pending_ into held_.
  void Decode(bool final);
  std::string Release();

  std::vector<std::string> stops_;
  std::string pending_;  // Bytes of an incomplete UTF-8 character.
  std::string held_;     // Valid text not yet released.
  std::string matched_;
};

}  // namespace joule::server

#endif  // JOULE_SERVER_TEXT_STREAM_H_
