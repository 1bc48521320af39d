#include "model/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "model/gguf.h"
#include "model/mapped_file.h"

namespace joule::model {

namespace {

// SentencePiece's default piece limit is 16 bytes; no real vocabulary
// comes near this.
constexpr size_t kMaxPieceBytes = 4096;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// llama2.c parses pieces with sscanf("<0x%02hhX>").
int ParseBytePiece(absl::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  int hi = HexDigit(p[3]), lo = HexDigit(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(
    const std::string& path, int vocab_size) {
  auto file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  const unsigned char* p = (*file)->data();
  const size_t size = (*file)->size();
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer ", path, ": ", why));
  };
  if (size < 4) return bad("file is too short for a header");
  size_t off = 4;  // max_token_length: informative only.
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->vocab_.reserve(vocab_size);
  t->scores_.reserve(vocab_size);
  for (int i = 0; i < vocab_size; ++i) {
    float score;
    int32_t len;
    if (off + 8 > size) {
      return bad(absl::StrFormat(
          "has %d tokens but the model's vocabulary has %d; use the "
          "tokenizer the model was trained with",
          i, vocab_size));
    }
    std::memcpy(&score, p + off, 4);
    std::memcpy(&len, p + off + 4, 4);
    off += 8;
    if (len < 0 || off + len > size) {
      return bad(absl::StrFormat("token %d has a bad length %d", i, len));
    }
    t->vocab_.emplace_back(reinterpret_cast<const char*>(p + off), len);
    t->scores_.push_back(score);
    off += len;
  }
  if (off != size) {
    return bad(absl::StrFormat(
        "has more tokens than the model's vocabulary of %d; use the "
        "tokenizer the model was trained with",
        vocab_size));
  }
  if (absl::Status st = t->Index(); !st.ok())
    return bad(std::string(st.message()));
  return t;
}

absl::Status Tokenizer::Index() {
  const int vocab_size = static_cast<int>(vocab_.size());
  byte_value_.assign(vocab_size, -1);
  for (int i = 0; i < vocab_size; ++i) {
    ids_.emplace(vocab_[i], i);  // First id wins for duplicates.
    byte_value_[i] = ParseBytePiece(vocab_[i]);
    // Real pieces are a few bytes; the bound keeps prompt-size limits
    // (context x longest piece) far from int overflow.
    if (vocab_[i].size() > kMaxPieceBytes) {
      return absl::InvalidArgumentError(
          absl::StrFormat("token %d is %d bytes long (at most %d)", i,
                          vocab_[i].size(), kMaxPieceBytes));
    }
    max_piece_bytes_ = std::max<int>(max_piece_bytes_, vocab_[i].size());
  }
  for (int b = 0; b < 256; ++b) byte_pieces_.push_back(static_cast<char>(b));
  // Encode's byte fallback takes token 3 + b for byte b.
  bool fallbacks = vocab_size >= 3 + 256;
  for (int b = 0; fallbacks && b < 256; ++b) {
    fallbacks = byte_value_[3 + b] == b;
  }
  if (!fallbacks) {
    return absl::InvalidArgumentError(
        "tokens 3..258 must be the byte fallbacks <0x00>..<0xFF>");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(
    const gguf::File& f, int vocab_size) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer in ", f.path(), ": ", why));
  };
  auto model = f.GetString("tokenizer.ggml.model");
  if (!model.ok()) return bad(model.status().message());
  if (*model != "llama") {
    return bad(absl::StrCat(
        "tokenizer model '", *model,
        "' is not supported: Joule reads llama's SentencePiece vocabulary "
        "(tokenizer.ggml.model = llama)"));
  }
  auto tokens = f.GetStrings("tokenizer.ggml.tokens");
  if (!tokens.ok()) return bad(tokens.status().message());
  auto scores = f.GetFloats("tokenizer.ggml.scores");
  if (!scores.ok()) return bad(scores.status().message());
  if (static_cast<int64_t>(tokens->size()) != vocab_size ||
      scores->size() != tokens->size()) {
    return bad(
        absl::StrFormat("%d tokens and %d scores for a model vocabulary of %d",
                        tokens->size(), scores->size(), vocab_size));
  }
  // Joule's encoder and the engines' stop test use llama's ids.
  const std::pair<const char*, int> kIds[] = {
      {"tokenizer.ggml.bos_token_id", kBos},
      {"tokenizer.ggml.eos_token_id", kEos}};
  for (const auto& [key, want] : kIds) {
    auto id = f.GetInt(key);
    if (id.ok() && *id != want) {
      return bad(
          absl::StrFormat("%s is %d; Joule needs llama's %d", key, *id, want));
    }
    if (!id.ok() && !absl::IsNotFound(id.status())) {
      return bad(id.status().message());
    }
  }
  auto add_bos = f.GetBool("tokenizer.ggml.add_bos_token");
  if (!add_bos.ok() && !absl::IsNotFound(add_bos.status())) {
    return bad(add_bos.status().message());
  }
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->add_bos_ = add_bos.ok() ? *add_bos : true;
  t->vocab_.reserve(vocab_size);
  for (absl::string_view piece : *tokens) {
    // SentencePiece writes a space as U+2581; llama2.c's export, and so
    // this tokenizer, uses ' '.
    t->vocab_.push_back(absl::StrReplaceAll(piece, {{"\xe2\x96\x81", " "}}));
  }
  t->scores_ = *std::move(scores);
  if (absl::Status st = t->Index(); !st.ok())
    return bad(std::string(st.message()));
  return t;
}

int Tokenizer::Lookup(absl::string_view piece) const {
  auto it = ids_.find(piece);
  return it == ids_.end() ? -1 : it->second;
}

std::vector<int> Tokenizer::Encode(absl::string_view text, bool bos) const {
  std::vector<int> tokens;
  tokens.reserve(text.size() + 2);
  if (bos) tokens.push_back(kBos);
  if (!text.empty()) {
    int space = Lookup(" ");
    if (space >= 0) tokens.push_back(space);
  }
  // One UTF-8 character (at most 4 bytes) at a time; characters that are
  // not in the vocabulary become their bytes' fallback tokens.
  size_t i = 0;
  while (i < text.size()) {
    size_t len = 1;
    while (i + len < text.size() && len < 4 &&
           (static_cast<unsigned char>(text[i + len]) & 0xC0) == 0x80) {
      ++len;
    }
    absl::string_view ch = text.substr(i, len);
    int id = Lookup(ch);
    if (id >= 0) {
      tokens.push_back(id);
    } else {
      for (unsigned char b : ch) tokens.push_back(b + 3);
    }
    i += len;
  }
  // Greedy merges, as llama2.c: always the best-scoring adjacent pair,
  // leftmost on ties. A heap of candidate pairs over a linked list makes it
  // O(n log n) instead of llama2.c's O(n^2) rescans, with the same result.
  const int n = static_cast<int>(tokens.size());
  std::vector<int> prev(n), next(n);
  for (int k = 0; k < n; ++k) {
    prev[k] = k - 1;
    next[k] = k + 1 < n ? k + 1 : -1;
  }
  struct Candidate {
    float score;
    int left;  // Original index; list order is original-index order.
    int left_token, right_token, merged;
  };
  auto worse = [](const Candidate& a, const Candidate& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::vector<Candidate> heap;
  std::string pair;
  auto consider = [&](int left) {
    if (left < 0 || next[left] < 0) return;
    const int right = next[left];
    pair.assign(vocab_[tokens[left]]);
    pair.append(vocab_[tokens[right]]);
    const int id = Lookup(pair);
    if (id < 0 || !(scores_[id] > -1e10f)) return;
    heap.push_back({scores_[id], left, tokens[left], tokens[right], id});
    std::push_heap(heap.begin(), heap.end(), worse);
  };
  for (int k = 0; k + 1 < n; ++k) consider(k);
  std::vector<bool> alive(n, true);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), worse);
    const Candidate c = heap.back();
    heap.pop_back();
    const int right = next[c.left];
    // Stale: either side was merged away or changed since it was pushed.
    if (!alive[c.left] || right < 0 || tokens[c.left] != c.left_token ||
        tokens[right] != c.right_token) {
      continue;
    }
    tokens[c.left] = c.merged;
    alive[right] = false;
    next[c.left] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.left;
    consider(prev[c.left]);
    consider(c.left);
  }
  std::vector<int> merged;
  merged.reserve(n);
  for (int k = n > 0 ? 0 : -1; k >= 0; k = next[k]) merged.push_back(tokens[k]);
  tokens.swap(merged);
  return tokens;
}

absl::string_view Tokenizer::Decode(int prev, int token) const {
  if (token < 0 || token >= vocab_size()) return {};
  if (byte_value_[token] >= 0) {
    return absl::string_view(byte_pieces_).substr(byte_value_[token], 1);
  }
  absl::string_view piece = vocab_[token];
  if (prev == kBos && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
  return piece;
}

}  // namespace joule::model
