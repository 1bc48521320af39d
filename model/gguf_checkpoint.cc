// Checkpoint::ParseGguf: a llama-architecture GGUF file as the shape and
// weights Joule's engines take. Tensor names and metadata keys are
// llama.cpp's (gguf-py's constants.py, llama.cpp's llama-arch.cpp).
#include <climits>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "model/checkpoint.h"
#include "model/ggml_quants.h"
#include "model/gguf.h"

namespace joule::model {
namespace {

using gguf::TensorType;

bool IsFloatType(uint32_t t) {
  return t == uint32_t(TensorType::kF32) || t == uint32_t(TensorType::kF16) ||
         t == uint32_t(TensorType::kBF16);
}

bool IsQuantType(uint32_t t) {
  return t == uint32_t(TensorType::kQ8_0) || t == uint32_t(TensorType::kQ4_0);
}

absl::Status Unsupported(const gguf::TensorInfo& t) {
  return absl::InvalidArgumentError(absl::StrCat(
      "tensor ", t.name, " has type ", gguf::TensorTypeName(t.type),
      ", which Joule does not read (it reads F32, F16, BF16, Q8_0 and "
      "Q4_0); re-quantize the model to one of those"));
}

// A positive int from `key`, or `fallback` when absent (0: required).
absl::StatusOr<int> PositiveInt(const gguf::File& f, absl::string_view key,
                                int fallback) {
  auto v = f.GetInt(key);
  if (absl::IsNotFound(v.status()) && fallback > 0) return fallback;
  if (!v.ok()) return v.status();
  if (*v < 1 || *v > INT_MAX) {
    return absl::InvalidArgumentError(
        absl::StrFormat("metadata %s = %d is out of range", key, *v));
  }
  return static_cast<int>(*v);
}

absl::StatusOr<float> PositiveFloat(const gguf::File& f, absl::string_view key,
                                    float fallback) {
  auto v = f.GetFloat(key);
  if (absl::IsNotFound(v.status())) return fallback;
  if (!v.ok()) return v.status();
  if (!(*v > 0) || *v > 1e30) {
    return absl::InvalidArgumentError(
        absl::StrFormat("metadata %s = %g must be positive", key, *v));
  }
  return static_cast<float>(*v);
}

absl::Status ReadShape(const gguf::File& f, Config* c) {
  auto arch = f.GetString("general.architecture");
  if (!arch.ok()) return arch.status();
  if (*arch != "llama") {
    return absl::InvalidArgumentError(absl::StrCat(
        "architecture '", *arch, "' is not supported: Joule runs llama"));
  }
  struct IntKey {
    const char* key;
    int* field;
    int fallback;
  };
  for (const IntKey& k : {
           IntKey{"llama.embedding_length", &c->dim, 0},
           IntKey{"llama.feed_forward_length", &c->hidden_dim, 0},
           IntKey{"llama.block_count", &c->n_layers, 0},
           IntKey{"llama.attention.head_count", &c->n_heads, 0},
           IntKey{"llama.context_length", &c->seq_len, 0},
       }) {
    auto v = PositiveInt(f, k.key, k.fallback);
    if (!v.ok()) return v.status();
    *k.field = *v;
  }
  auto kv = PositiveInt(f, "llama.attention.head_count_kv", c->n_heads);
  if (!kv.ok()) return kv.status();
  c->n_kv_heads = *kv;
  auto theta = PositiveFloat(f, "llama.rope.freq_base", 10000.0f);
  if (!theta.ok()) return theta.status();
  c->rope_theta = *theta;
  auto eps = PositiveFloat(f, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  if (!eps.ok()) return eps.status();
  c->norm_eps = *eps;
  if (c->n_heads > 0 && c->dim % c->n_heads == 0) {
    auto rot =
        PositiveInt(f, "llama.rope.dimension_count", c->dim / c->n_heads);
    if (!rot.ok()) return rot.status();
    if (*rot != c->dim / c->n_heads) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "llama.rope.dimension_count %d is not the head size %d: partial "
          "rotary embeddings are not supported",
          *rot, c->dim / c->n_heads));
    }
  }
  if (auto scaling = f.GetString("llama.rope.scaling.type");
      scaling.ok() && *scaling != "none") {
    return absl::InvalidArgumentError(
        absl::StrCat("RoPE scaling '", *scaling, "' is not supported"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Checkpoint::ParseGguf() {
  auto file = gguf::File::Parse(file_->data(), file_->size());
  if (!file.ok()) return file.status();
  gguf_ = *std::move(file);
  const gguf::File& f = *gguf_;
  version_ = static_cast<int>(f.version());
  if (absl::Status s = ReadShape(f, &config_); !s.ok()) return s;
  const gguf::TensorInfo* embd = f.FindTensor("token_embd.weight");
  if (embd == nullptr) {
    return absl::InvalidArgumentError("tensor token_embd.weight is missing");
  }
  if (embd->dims.size() != 2 || embd->dims[1] > INT_MAX) {
    return absl::InvalidArgumentError(
        "token_embd.weight must be a matrix [embedding_length, vocab]");
  }
  config_.vocab_size = static_cast<int>(embd->dims[1]);
  const gguf::TensorInfo* output = f.FindTensor("output.weight");
  config_.shared_classifier = output == nullptr;
  if (absl::Status s = ValidateConfig(config_); !s.ok()) return s;
  return ReadGgufWeights();
}

absl::StatusOr<const gguf::TensorInfo*> Checkpoint::GgufTensor(
    absl::string_view name, std::vector<int64_t> dims) const {
  const gguf::TensorInfo* t = gguf_->FindTensor(name);
  if (t == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", name, " is missing"));
  }
  if (t->dims != dims) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor ", name, " has shape [", absl::StrJoin(t->dims, ", "),
        "], the metadata's shape (", config_.DebugString(), ") needs [",
        absl::StrJoin(dims, ", "), "]"));
  }
  if (!IsFloatType(t->type) && !IsQuantType(t->type)) return Unsupported(*t);
  return t;
}

absl::StatusOr<const float*> Checkpoint::GgufVector(absl::string_view name) {
  auto t = GgufTensor(name, {config_.dim});
  if (!t.ok()) return t.status();
  const gguf::TensorInfo& info = **t;
  if (!IsFloatType(info.type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", name, " is ", gguf::TensorTypeName(info.type),
                     "; norm weights must be F32, F16 or BF16"));
  }
  return Floats(info);
}

// F32 data is used in place when aligned; other float types are widened.
const float* Checkpoint::Floats(const gguf::TensorInfo& t) {
  if (t.type == uint32_t(TensorType::kF32) &&
      reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0) {
    return reinterpret_cast<const float*>(t.data);
  }
  float* out = OwnFloats(t.elements);
  if (t.type == uint32_t(TensorType::kF32)) {
    std::memcpy(out, t.data, t.elements * sizeof(float));
  } else if (t.type == uint32_t(TensorType::kF16)) {
    ggml::DequantizeF16(t.data, t.elements, out);
  } else {
    ggml::DequantizeBf16(t.data, t.elements, out);
  }
  return out;
}

// A weight matrix in the checkpoint's format (chosen in ReadGgufWeights).
Matrix Checkpoint::GgufMatrix(const gguf::TensorInfo& t) {
  Matrix m;
  m.cols = static_cast<int>(t.dims[0]);
  m.rows = static_cast<int>(t.dims[1]);
  const int64_t n = t.elements;
  if (format_ == WeightFormat::kFp32) {
    m.f32 = Floats(t);
    return m;
  }
  constexpr int kGroup = ggml::kBlockValues;
  m.group_size = kGroup;
  float* scales = OwnFloats(n / kGroup);
  m.scales = scales;
  const bool q4_in = t.type == uint32_t(TensorType::kQ4_0);
  const int block_bytes = q4_in ? ggml::kQ4_0BlockBytes : ggml::kQ8_0BlockBytes;
  uint8_t* q4 = format_ == WeightFormat::kQ4_0 ? OwnBytes(n / 2) : nullptr;
  int8_t* q = q4 == nullptr ? OwnInt8s(n) : nullptr;
  for (int64_t b = 0; b < n / kGroup; ++b) {
    const unsigned char* p = t.data + b * block_bytes;
    uint16_t d;
    std::memcpy(&d, p, 2);
    scales[b] = ggml::HalfToFloat(d);
    if (q4 != nullptr) {  // Q4_0 kept as it is.
      std::memcpy(q4 + b * (kGroup / 2), p + 2, kGroup / 2);
    } else if (q4_in) {  // Q4_0 widened to Q8_0: exact.
      ggml::WidenQ4_0(p + 2, kGroup, q + b * kGroup);
    } else {
      std::memcpy(q + b * kGroup, p + 2, kGroup);
    }
  }
  if (q4 != nullptr) {
    m.q4 = q4;
  } else {
    m.q = q;
  }
  return m;
}

absl::Status Checkpoint::ReadGgufWeights() {
  const Config& c = config_;
  const int64_t dim = c.dim, hidden = c.hidden_dim, kv = c.kv_dim();
  const int64_t vocab = c.vocab_size;
  struct Want {
    std::string name;
    std::vector<int64_t> dims;
    Matrix* into;
  };
  std::vector<Want> matrices;
  layers_.assign(c.n_layers, LayerWeights());
  matrices.push_back({"token_embd.weight", {dim, vocab}, &token_embedding_});
  if (!c.shared_classifier) {
    matrices.push_back({"output.weight", {dim, vocab}, &classifier_});
  }
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& w = layers_[l];
    const std::string p = absl::StrCat("blk.", l, ".");
    matrices.push_back({p + "attn_q.weight", {dim, dim}, &w.wq});
    matrices.push_back({p + "attn_k.weight", {dim, kv}, &w.wk});
    matrices.push_back({p + "attn_v.weight", {dim, kv}, &w.wv});
    matrices.push_back({p + "attn_output.weight", {dim, dim}, &w.wo});
    matrices.push_back({p + "ffn_gate.weight", {dim, hidden}, &w.w1});
    matrices.push_back({p + "ffn_down.weight", {hidden, dim}, &w.w2});
    matrices.push_back({p + "ffn_up.weight", {dim, hidden}, &w.w3});
  }
  // One encoding for every matrix, as the engines take: float types
  // widen to fp32, Q4_0 beside Q8_0 widens to Q8_0 (exactly).
  std::vector<const gguf::TensorInfo*> infos;
  bool any_float = false, any_q8 = false, any_q4 = false;
  for (const Want& w : matrices) {
    auto t = GgufTensor(w.name, w.dims);
    if (!t.ok()) return t.status();
    infos.push_back(*t);
    any_float |= IsFloatType((*t)->type);
    any_q8 |= (*t)->type == uint32_t(TensorType::kQ8_0);
    any_q4 |= (*t)->type == uint32_t(TensorType::kQ4_0);
  }
  if (any_float && (any_q8 || any_q4)) {
    return absl::InvalidArgumentError(
        "the weight matrices mix float and quantized types; Joule's engines "
        "take one encoding per model: quantize all of them (Q8_0 or Q4_0) "
        "or none");
  }
  format_ = any_q8   ? WeightFormat::kQ8_0
            : any_q4 ? WeightFormat::kQ4_0
                     : WeightFormat::kFp32;
  group_size_ = format_ == WeightFormat::kFp32 ? 0 : ggml::kBlockValues;
  for (size_t i = 0; i < matrices.size(); ++i) {
    *matrices[i].into = GgufMatrix(*infos[i]);
  }
  if (c.shared_classifier) classifier_ = token_embedding_;
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    auto att = GgufVector(p + "attn_norm.weight");
    if (!att.ok()) return att.status();
    auto ffn = GgufVector(p + "ffn_norm.weight");
    if (!ffn.ok()) return ffn.status();
    layers_[l].rms_att = *att;
    layers_[l].rms_ffn = *ffn;
  }
  auto final_norm = GgufVector("output_norm.weight");
  if (!final_norm.ok()) return final_norm.status();
  rms_final_ = *final_norm;
  return absl::OkStatus();
}

}  // namespace joule::model
