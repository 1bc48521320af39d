#ifndef JOULE_MODEL_TOKENIZER_H_
#define JOULE_MODEL_TOKENIZER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace joule::model {
namespace gguf {
class File;
}  // namespace gguf

// llama2.c's tokenizer.bin: SentencePiece-style BPE with byte fallback,
// encoding and decoding exactly as llama2.c's run.c does.
class Tokenizer {
 public:
  static constexpr int kUnk = 0;
  static constexpr int kBos = 1;
  static constexpr int kEos = 2;

  // `vocab_size` comes from the model: the file does not store it, and a
  // tokenizer made for another vocabulary is an error, not a surprise later.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(
      const std::string& path, int vocab_size);
  // The vocabulary of a GGUF file (tokenizer.ggml.*): llama's SentencePiece
  // model only, with BOS 1 and EOS 2.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(
      const gguf::File& file, int vocab_size);

  // BOS first if `bos`; a non-empty text gets SentencePiece's dummy-prefix
  // space; unknown characters fall back to byte tokens <0xHH>; then the
  // highest-scoring merges are applied until none applies.
  std::vector<int> Encode(absl::string_view text, bool bos) const;

  // The bytes `token` prints as when it follows `prev`: the leading space is
  // dropped after BOS, and <0xHH> pieces become that raw byte. Bytes, not
  // necessarily whole UTF-8 characters.
  absl::string_view Decode(int prev, int token) const;

  int vocab_size() const { return static_cast<int>(vocab_.size()); }
  // Whether prompts start with BOS (GGUF's add_bos_token; llama2.c: yes).
  bool add_bos() const { return add_bos_; }
  const std::string& piece(int token) const { return vocab_[token]; }
  float score(int token) const { return scores_[token]; }
  // Bytes of the longest piece: a text of N bytes is at least
  // N / max_piece_bytes() tokens.
  int max_piece_bytes() const { return max_piece_bytes_; }

 private:
  Tokenizer() = default;
  int Lookup(absl::string_view piece) const;
  // Builds the look-ups from vocab_ and checks the byte fallbacks.
  absl::Status Index();

  std::vector<std::string> vocab_;
  std::vector<float> scores_;
  absl::flat_hash_map<std::string, int> ids_;
  // The decoded byte of each <0xHH> piece, indexed by token; -1 otherwise.
  std::vector<int> byte_value_;
  std::string byte_pieces_;  // 256 single bytes, for Decode's views.
  int max_piece_bytes_ = 1;
  bool add_bos_ = true;
};

}  // namespace joule::model

#endif  // JOULE_MODEL_TOKENIZER_H_
