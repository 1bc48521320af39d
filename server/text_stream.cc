#include "server/text_stream.h"

#include <algorithm>

namespace joule::server {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// Length of the UTF-8 sequence led by `b`, 0 if `b` cannot lead one.
int SequenceLength(unsigned char b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// Whether `b` may follow `lead` as the second byte (RFC 3629: no overlong
// forms, no surrogates, nothing past U+10FFFF).
bool ValidSecond(unsigned char lead, unsigned char b) {
  switch (lead) {
    case 0xE0:
      return b >= 0xA0 && b <= 0xBF;
    case 0xED:
      return b >= 0x80 && b <= 0x9F;
    case 0xF0:
      return b >= 0x90 && b <= 0xBF;
    case 0xF4:
      return b >= 0x80 && b <= 0x8F;
    default:
      return b >= 0x80 && b <= 0xBF;
  }
}

}  // namespace

TextStream::TextStream(std::vector<std::string> stop_sequences)
    : stops_(std::move(stop_sequences)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()),
               stops_.end());
}

void TextStream::Decode(bool final) {
  size_t i = 0;
  while (i < pending_.size()) {
    const unsigned char lead = pending_[i];
    const int len = SequenceLength(lead);
    if (len == 0) {
      held_.append(kReplacement);
      ++i;
      continue;
    }
    int have = 1;
    bool bad = false;
    while (have < len && i + have < pending_.size()) {
      const unsigned char b = pending_[i + have];
      if (have == 1 ? !ValidSecond(lead, b) : (b & 0xC0) != 0x80) {
        bad = true;
        break;
      }
      ++have;
    }
    if (bad) {  // Replace the broken prefix, resync at the offending byte.
      held_.append(kReplacement);
      i += have;
      continue;
    }
    if (have < len) {  // Incomplete: wait for more bytes unless final.
      if (!final) break;
      held_.append(kReplacement);
      i = pending_.size();
      break;
    }
    held_.append(pending_, i, len);
    i += len;
  }
  pending_.erase(0, i);
}

std::string TextStream::Release() {
  // The earliest match wins, whichever stop it is: text before it may not
  // contain another stop (found by the fuzzer: stops "b", "a" and text
  // "ab" released the "a").
  size_t first = std::string::npos;
  const std::string* first_stop = nullptr;
  for (const std::string& stop : stops_) {
    const size_t at = held_.find(stop);
    if (at < first) {
      first = at;
      first_stop = &stop;
    }
  }
  if (first_stop != nullptr) {
    matched_ = *first_stop;
    std::string out = held_.substr(0, first);
    held_.clear();
    pending_.clear();
    return out;
  }
  // Keep the earliest suffix that could still grow into a stop sequence.
  size_t keep_from = held_.size();
  for (const std::string& stop : stops_) {
    const size_t max_len = std::min(stop.size() - 1, held_.size());
    for (size_t len = max_len; len > 0; --len) {
      const size_t start = held_.size() - len;
      if (start >= keep_from) break;
      if (held_.compare(start, len, stop, 0, len) == 0) {
        keep_from = start;
        break;
      }
    }
  }
  std::string out = held_.substr(0, keep_from);
  held_.erase(0, keep_from);
  return out;
}

std::string TextStream::Append(absl::string_view bytes) {
  if (stopped()) return {};
  pending_.append(bytes.data(), bytes.size());
  Decode(/*final=*/false);
  return Release();
}

std::string TextStream::Flush() {
  if (stopped()) return {};
  Decode(/*final=*/true);
  std::string out = Release();
  if (!stopped()) {
    out += held_;
    held_.clear();
  }
  return out;
}

}  // namespace joule::server
