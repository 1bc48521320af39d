// The UTF-8 text streamer on arbitrary token bytes and stop sequences: every
// released piece is valid UTF-8, and no stop sequence is ever released.
// Input: u8 stop count (0..3), each stop as u8 length + bytes, then token
// chunks as u8 length + bytes.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "proto/request_parser.h"
#include "server/text_stream.h"

namespace {

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool Done() const { return pos_ >= size_; }
  uint8_t Byte() { return Done() ? 0 : data_[pos_++]; }
  std::string Bytes(size_t n) {
    n = std::min(n, size_ - pos_);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

void CheckPiece(const std::string& piece) {
  if (joule::v1::FirstInvalidUtf8(piece) != absl::string_view::npos) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  std::vector<std::string> stops;
  const int n_stops = in.Byte() % 4;
  for (int i = 0; i < n_stops; ++i) {
    std::string s = in.Bytes(1 + in.Byte() % 16);
    // The server refuses empty or invalid stop sequences.
    if (s.empty() || joule::v1::FirstInvalidUtf8(s) != absl::string_view::npos)
      return 0;
    stops.push_back(s);
  }
  joule::server::TextStream stream(stops);
  std::string released;
  while (!in.Done() && !stream.stopped()) {
    const std::string piece = stream.Append(in.Bytes(in.Byte() % 8));
    CheckPiece(piece);
    released += piece;
  }
  const std::string rest = stream.Flush();
  CheckPiece(rest);
  released += rest;
  for (const std::string& s : stops) {
    if (absl::StrContains(released, s)) __builtin_trap();
  }
  return 0;
}
