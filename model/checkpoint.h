#ifndef JOULE_MODEL_CHECKPOINT_H_
#define JOULE_MODEL_CHECKPOINT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/config.h"
#include "model/mapped_file.h"

namespace joule::model {

// A row-major weight matrix [rows x cols] (y = W x, x has `cols` entries),
// pointing into the mapped checkpoint (or the checkpoint's own copy when
// the file's encoding is not the engines'). Exactly one of `f32`, `q` and
// `q4` is set.
struct Matrix {
  int rows = 0;
  int cols = 0;
  const float* f32 = nullptr;
  // Q8_0: int8 values; every `group_size` consecutive values (in row-major
  // order) share one fp32 scale, value = q * scale.
  const int8_t* q = nullptr;
  // Q4_0 (GGUF): per group of 32 values 16 bytes, byte j holding value j in
  // its low nibble and value 16 + j in its high one: value = (n - 8) *
  // scale. Uses `scales` and `group_size` (32) as Q8_0 does.
  const uint8_t* q4 = nullptr;
  const float* scales = nullptr;
  int group_size = 0;

  bool quantized() const { return q != nullptr || q4 != nullptr; }
  int64_t size() const { return int64_t{rows} * cols; }
  // Row `r` in fp32 (dequantized for Q8_0) into `out[0..cols)`.
  void DequantizeRow(int r, float* out) const;
};

struct LayerWeights {
  const float* rms_att = nullptr;  // [dim]
  const float* rms_ffn = nullptr;  // [dim]
  Matrix wq;                       // [dim x dim]
  Matrix wk;                       // [kv_dim x dim]
  Matrix wv;                       // [kv_dim x dim]
  Matrix wo;                       // [dim x dim]
  Matrix w1;                       // [hidden_dim x dim]
  Matrix w2;                       // [dim x hidden_dim]
  Matrix w3;                       // [hidden_dim x dim]
};

enum class WeightFormat { kFp32, kQ8_0, kQ4_0 };

// "fp32", "int8 (Q8_0)" or "int4 (Q4_0)".
const char* WeightFormatName(WeightFormat f);

namespace gguf {
class File;
struct TensorInfo;
}  // namespace gguf

// A llama2.c checkpoint, memory-mapped and checked against its header:
//   version 0: legacy fp32, 28-byte header of 7 int32 (negative vocab_size:
//              separate classifier at the end), RoPE tables skipped.
//   version 1: fp32 with the 256-byte "ak42" header.
//   version 2: Q8_0 int8 weights with the 256-byte "ak42" header, fp32 norms.
// or a GGUF file of the llama architecture (gguf_checkpoint.cc).
class Checkpoint {
 public:
  // Errors name what is wrong: missing file, bad header, or a size that does
  // not match the shape (truncated or with trailing bytes). A file that
  // starts with GGUF's magic is read as GGUF.
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(
      const std::string& path);
  ~Checkpoint();

  const Config& config() const { return config_; }
  // llama2.c's version (0, 1, 2), or the GGUF version.
  int version() const { return version_; }
  // The GGUF file this was read from (its tokenizer is in the metadata);
  // null for a llama2.c checkpoint.
  const gguf::File* gguf() const { return gguf_.get(); }
  WeightFormat format() const { return format_; }
  // 0 for fp32 checkpoints.
  int group_size() const { return group_size_; }
  const std::string& path() const { return file_->path(); }
  size_t file_size() const { return file_->size(); }

  const Matrix& token_embedding() const { return token_embedding_; }
  const LayerWeights& layer(int l) const { return layers_[l]; }
  const float* rms_final() const { return rms_final_; }
  // The token embedding itself when the classifier is shared.
  const Matrix& classifier() const { return classifier_; }

 private:
  Checkpoint();
  absl::Status Parse();
  // GGUF (gguf_checkpoint.cc).
  absl::Status ParseGguf();
  absl::Status ReadGgufWeights();
  absl::StatusOr<const gguf::TensorInfo*> GgufTensor(
      absl::string_view name, std::vector<int64_t> dims) const;
  absl::StatusOr<const float*> GgufVector(absl::string_view name);
  const float* Floats(const gguf::TensorInfo& t);
  Matrix GgufMatrix(const gguf::TensorInfo& t);
  // Storage for tensors converted from the file's encoding.
  float* OwnFloats(int64_t n);
  int8_t* OwnInt8s(int64_t n);
  uint8_t* OwnBytes(int64_t n);

  std::unique_ptr<gguf::File> gguf_;
  std::vector<std::unique_ptr<float[]>> owned_floats_;
  std::vector<std::unique_ptr<int8_t[]>> owned_int8s_;
  std::vector<std::unique_ptr<uint8_t[]>> owned_bytes_;

  std::unique_ptr<MappedFile> file_;
  Config config_;
  int version_ = 0;
  WeightFormat format_ = WeightFormat::kFp32;
  int group_size_ = 0;
  Matrix token_embedding_;
  Matrix classifier_;
  std::vector<LayerWeights> layers_;
  const float* rms_final_ = nullptr;
};

// Checks that a shape is one this project can run: positive sizes, heads
// dividing dim, an even head size (RoPE), bounds that keep sizes in int64.
absl::Status ValidateConfig(const Config& c);

inline constexpr uint32_t kCheckpointMagic = 0x616b3432;  // "ak42"
inline constexpr int kV0HeaderBytes = 28;
inline constexpr int kV2HeaderBytes = 256;

}  // namespace joule::model

#endif  // JOULE_MODEL_CHECKPOINT_H_
