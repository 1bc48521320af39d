// The tokenizer loader and encoder on arbitrary bytes. Input: u16 vocabulary
// size, u16 text length, the text, then the tokenizer.bin bytes. A loaded
// tokenizer must encode any text into in-range tokens and decode them.
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/string_view.h"
#include "model/tokenizer.h"
#include "tests/fuzz/memfd.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint16_t vocab = 0, text_len = 0;
  std::memcpy(&vocab, data, 2);
  std::memcpy(&text_len, data + 2, 2);
  data += 4;
  size -= 4;
  // Real vocabularies need at least the three special tokens.
  const int vocab_size = 3 + vocab % 4096;
  const size_t n = text_len < size ? text_len : size;
  const absl::string_view text(reinterpret_cast<const char*>(data), n);
  joule::fuzz::MemFile file(data + n, size - n);
  auto tok = joule::model::Tokenizer::Load(file.path(), vocab_size);
  if (!tok.ok()) return 0;
  for (bool bos : {false, true}) {
    int prev = joule::model::Tokenizer::kBos;
    for (int t : (*tok)->Encode(text, bos)) {
      if (t < 0 || t >= vocab_size) __builtin_trap();
      volatile size_t sink = (*tok)->Decode(prev, t).size();
      (void)sink;
      prev = t;
    }
  }
  return 0;
}
