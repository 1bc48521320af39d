#include "model/checkpoint.h"

#include <cstring>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/ggml_quants.h"
#include "model/gguf.h"

namespace joule::model {
namespace {

int32_t ReadI32(const unsigned char* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Walks the file front to back, handing out typed views and recording the
// first size problem instead of reading past the end.
class Cursor {
 public:
  Cursor(const unsigned char* base, size_t size, size_t offset)
      : base_(base), size_(size), offset_(offset), needed_(offset) {}

  const float* Floats(int64_t n, absl::string_view what) {
    if (ok() && offset_ % alignof(float) != 0) {
      error_ = absl::StrFormat(
          "%s starts at byte %d, which is not 4-byte aligned; this shape "
          "cannot be memory-mapped",
          what, offset_);
    }
    return reinterpret_cast<const float*>(Take(n * 4, what));
  }
  const int8_t* Int8s(int64_t n, absl::string_view what) {
    return reinterpret_cast<const int8_t*>(Take(n, what));
  }
  void Skip(int64_t bytes, absl::string_view what) { Take(bytes, what); }

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  size_t offset() const { return offset_; }
  // Bytes a complete file would need, even past a truncation.
  int64_t needed() const { return needed_; }

 private:
  const unsigned char* Take(int64_t bytes, absl::string_view what) {
    needed_ += bytes;
    if (!ok()) return nullptr;
    if (offset_ + bytes > size_) {
      error_ = absl::StrFormat("file ends inside %s", what);
      return nullptr;
    }
    const unsigned char* p = base_ + offset_;
    offset_ += bytes;
    return p;
  }

  const unsigned char* base_;
  size_t size_;
  size_t offset_;
  int64_t needed_;
  std::string error_;
};

}  // namespace

const char* WeightFormatName(WeightFormat f) {
  switch (f) {
    case WeightFormat::kFp32:
      return "fp32";
    case WeightFormat::kQ8_0:
      return "int8 (Q8_0)";
    case WeightFormat::kQ4_0:
      return "int4 (Q4_0)";
  }
  return "unknown";
}

void Matrix::DequantizeRow(int r, float* out) const {
  const int64_t start = int64_t{r} * cols;
  if (!quantized()) {
    std::memcpy(out, f32 + start, sizeof(float) * cols);
    return;
  }
  if (q4 != nullptr) {
    // Groups of 32 never straddle rows: cols is a multiple of 32.
    int8_t q[32];
    for (int c = 0; c < cols; c += 32) {
      const int64_t g = (start + c) / 32;
      ggml::WidenQ4_0(q4 + g * 16, 32, q);
      for (int j = 0; j < 32; ++j) out[c + j] = q[j] * scales[g];
    }
    return;
  }
  for (int c = 0; c < cols; ++c) {
    const int64_t i = start + c;
    out[c] = q[i] * scales[i / group_size];
  }
}

absl::Status ValidateConfig(const Config& c) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported model shape (", c.DebugString(), "): ", why));
  };
  if (c.dim <= 0 || c.hidden_dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 ||
      c.n_kv_heads <= 0 || c.vocab_size <= 0 || c.seq_len <= 0) {
    return bad("every size must be positive");
  }
  if (c.dim > (1 << 16) || c.hidden_dim > (1 << 18) || c.n_layers > 1024 ||
      c.vocab_size > (1 << 22) || c.seq_len > (1 << 20)) {
    return bad("a size is larger than this server supports");
  }
  if (c.dim % c.n_heads != 0) return bad("n_heads must divide dim");
  if (c.n_heads % c.n_kv_heads != 0) {
    return bad("n_kv_heads must divide n_heads");
  }
  if (c.head_size() % 2 != 0) return bad("head size must be even for RoPE");
  // Engines size RoPE tables by seq_len x head_size and a sequence's KV
  // cache by seq_len x n_layers x kv_dim: each within limits alone, the
  // products of a hostile header could still ask for terabytes.
  if (int64_t{c.seq_len} * c.head_size() > (int64_t{1} << 26)) {
    return bad("context length x head size exceeds 2^26");
  }
  if (int64_t{c.seq_len} * c.n_layers * c.kv_dim() > (int64_t{1} << 34)) {
    return bad("context length x layers x KV width exceeds 2^34");
  }
  return absl::OkStatus();
}

Checkpoint::Checkpoint() = default;
Checkpoint::~Checkpoint() = default;

float* Checkpoint::OwnFloats(int64_t n) {
  owned_floats_.push_back(std::make_unique<float[]>(n));
  return owned_floats_.back().get();
}

int8_t* Checkpoint::OwnInt8s(int64_t n) {
  owned_int8s_.push_back(std::make_unique<int8_t[]>(n));
  return owned_int8s_.back().get();
}

uint8_t* Checkpoint::OwnBytes(int64_t n) {
  owned_bytes_.push_back(std::make_unique<uint8_t[]>(n));
  return owned_bytes_.back().get();
}

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(
    const std::string& path) {
  auto file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  std::unique_ptr<Checkpoint> ckpt(new Checkpoint());
  ckpt->file_ = *std::move(file);
  absl::Status s =
      gguf::File::HasMagic(ckpt->file_->data(), ckpt->file_->size())
          ? ckpt->ParseGguf()
          : ckpt->Parse();
  if (!s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("checkpoint ", path, ": ", s.message()));
  }
  return ckpt;
}

absl::Status Checkpoint::Parse() {
  const unsigned char* base = file_->data();
  const size_t size = file_->size();
  if (size < kV0HeaderBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "file is %d bytes, shorter than any llama2.c header", size));
  }
  size_t offset = 0;
  uint32_t magic;
  std::memcpy(&magic, base, 4);
  if (magic == kCheckpointMagic) {
    if (size < kV2HeaderBytes) {
      return absl::InvalidArgumentError(
          absl::StrFormat("file is %d bytes, shorter than the %d-byte header",
                          size, kV2HeaderBytes));
    }
    version_ = ReadI32(base + 4);
    if (version_ != 1 && version_ != 2) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "checkpoint version %d is not supported (use 0, 1 or 2)", version_));
    }
    const unsigned char* h = base + 8;
    config_.dim = ReadI32(h);
    config_.hidden_dim = ReadI32(h + 4);
    config_.n_layers = ReadI32(h + 8);
    config_.n_heads = ReadI32(h + 12);
    config_.n_kv_heads = ReadI32(h + 16);
    config_.vocab_size = ReadI32(h + 20);
    config_.seq_len = ReadI32(h + 24);
    uint8_t shared = base[36];
    if (shared > 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "shared-classifier flag is %d; expected 0 or 1", shared));
    }
    config_.shared_classifier = shared == 1;
    if (version_ == 2) {
      group_size_ = ReadI32(base + 37);
      format_ = WeightFormat::kQ8_0;
      if (group_size_ <= 0) {
        return absl::InvalidArgumentError(
            absl::StrFormat("group size %d must be positive", group_size_));
      }
    }
    offset = kV2HeaderBytes;
  } else {
    version_ = 0;
    config_.dim = ReadI32(base);
    config_.hidden_dim = ReadI32(base + 4);
    config_.n_layers = ReadI32(base + 8);
    config_.n_heads = ReadI32(base + 12);
    config_.n_kv_heads = ReadI32(base + 16);
    // llama2.c stores an unshared classifier as a negative vocab size;
    // INT32_MIN has no positive counterpart, so it is refused here.
    int32_t vocab = ReadI32(base + 20);
    if (vocab == std::numeric_limits<int32_t>::min()) {
      return absl::InvalidArgumentError(
          "vocab_size -2^31 in the header is out of range");
    }
    config_.shared_classifier = vocab > 0;
    config_.vocab_size = vocab < 0 ? -vocab : vocab;
    config_.seq_len = ReadI32(base + 24);
    offset = kV0HeaderBytes;
  }
  if (absl::Status s = ValidateConfig(config_); !s.ok()) return s;

  const Config& c = config_;
  const int64_t dim = c.dim, hidden = c.hidden_dim, kv = c.kv_dim();
  const int64_t vocab = c.vocab_size;
  if (format_ == WeightFormat::kQ8_0) {
    for (int64_t n : {dim * dim, kv * dim, hidden * dim, vocab * dim}) {
      if (n % group_size_ != 0) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "group size %d does not divide a %d-value tensor of shape (%s)",
            group_size_, n, c.DebugString()));
      }
    }
  }
  Cursor cur(base, size, offset);
  layers_.assign(c.n_layers, LayerWeights());

  auto matrix = [&](int rows, int cols, absl::string_view what) {
    Matrix m;
    m.rows = rows;
    m.cols = cols;
    if (format_ == WeightFormat::kFp32) {
      m.f32 = cur.Floats(m.size(), what);
    } else {
      m.q = cur.Int8s(m.size(), what);
      m.scales =
          cur.Floats(m.size() / group_size_, absl::StrCat(what, " scales"));
      m.group_size = group_size_;
    }
    return m;
  };
  auto per_layer_matrix = [&](Matrix LayerWeights::*field, int rows, int cols,
                              absl::string_view name) {
    for (int l = 0; l < c.n_layers; ++l) {
      layers_[l].*field =
          matrix(rows, cols, absl::StrFormat("layer %d %s", l, name));
    }
  };
  auto per_layer_norm = [&](const float* LayerWeights::*field,
                            absl::string_view name) {
    for (int l = 0; l < c.n_layers; ++l) {
      layers_[l].*field =
          cur.Floats(dim, absl::StrFormat("layer %d %s", l, name));
    }
  };

  if (version_ == 0) {
    token_embedding_ = matrix(vocab, dim, "token embedding");
    per_layer_norm(&LayerWeights::rms_att, "attention norm");
    per_layer_matrix(&LayerWeights::wq, dim, dim, "wq");
    per_layer_matrix(&LayerWeights::wk, kv, dim, "wk");
    per_layer_matrix(&LayerWeights::wv, kv, dim, "wv");
    per_layer_matrix(&LayerWeights::wo, dim, dim, "wo");
    per_layer_norm(&LayerWeights::rms_ffn, "ffn norm");
    per_layer_matrix(&LayerWeights::w1, hidden, dim, "w1");
    per_layer_matrix(&LayerWeights::w2, dim, hidden, "w2");
    per_layer_matrix(&LayerWeights::w3, hidden, dim, "w3");
    rms_final_ = cur.Floats(dim, "final norm");
    // Legacy RoPE tables (cos and sin); the engines compute RoPE themselves.
    cur.Skip(int64_t{c.seq_len} * c.head_size() / 2 * 4 * 2, "RoPE tables");
  } else {
    per_layer_norm(&LayerWeights::rms_att, "attention norm");
    per_layer_norm(&LayerWeights::rms_ffn, "ffn norm");
    rms_final_ = cur.Floats(dim, "final norm");
    token_embedding_ = matrix(vocab, dim, "token embedding");
    per_layer_matrix(&LayerWeights::wq, dim, dim, "wq");
    per_layer_matrix(&LayerWeights::wk, kv, dim, "wk");
    per_layer_matrix(&LayerWeights::wv, kv, dim, "wv");
    per_layer_matrix(&LayerWeights::wo, dim, dim, "wo");
    per_layer_matrix(&LayerWeights::w1, hidden, dim, "w1");
    per_layer_matrix(&LayerWeights::w2, dim, hidden, "w2");
    per_layer_matrix(&LayerWeights::w3, hidden, dim, "w3");
  }
  classifier_ =
      c.shared_classifier ? token_embedding_ : matrix(vocab, dim, "classifier");
  if (!cur.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "truncated or wrong shape: %s; a version %d checkpoint of shape "
        "(%s) needs %d bytes, the file has %d",
        cur.error(), version_, c.DebugString(), cur.needed(), size));
  }
  if (cur.offset() != size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%d unexpected bytes after the last tensor: a version %d checkpoint "
        "of shape (%s) is %d bytes, the file has %d",
        size - cur.offset(), version_, c.DebugString(), cur.offset(), size));
  }
  return absl::OkStatus();
}

}  // namespace joule::model
