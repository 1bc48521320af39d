#include "model/gguf_export.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "model/ggml_quants.h"
#include "model/gguf_writer.h"

namespace joule::model {
namespace {

// SentencePiece token types (llama.cpp's llama_token_type).
constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6;

std::string Encode(const float* x, int64_t n, gguf::TensorType type) {
  std::string out;
  switch (type) {
    case gguf::TensorType::kF32:
      out.assign(reinterpret_cast<const char*>(x), n * sizeof(float));
      break;
    case gguf::TensorType::kF16:
    case gguf::TensorType::kBF16:
      out.reserve(n * 2);
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = type == gguf::TensorType::kF16
                               ? ggml::FloatToHalf(x[i])
                               : ggml::FloatToBf16(x[i]);
        out.push_back(static_cast<char>(h & 0xff));
        out.push_back(static_cast<char>(h >> 8));
      }
      break;
    case gguf::TensorType::kQ8_0:
      ggml::QuantizeQ8_0(x, n, &out);
      break;
    case gguf::TensorType::kQ4_0:
      ggml::QuantizeQ4_0(x, n, &out);
      break;
  }
  return out;
}

void AddMatrix(gguf::Writer& w, const std::string& name, const Matrix& m,
               gguf::TensorType type) {
  std::vector<float> x(m.size());
  for (int r = 0; r < m.rows; ++r) {
    m.DequantizeRow(r, x.data() + int64_t{r} * m.cols);
  }
  w.AddTensor(name, {m.cols, m.rows}, static_cast<uint32_t>(type),
              Encode(x.data(), m.size(), type));
}

void AddVector(gguf::Writer& w, const std::string& name, const float* v,
               int n) {
  w.AddTensor(name, {n}, static_cast<uint32_t>(gguf::TensorType::kF32),
              Encode(v, n, gguf::TensorType::kF32));
}

void AddTokenizer(gguf::Writer& w, const Tokenizer& t) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (int i = 0; i < t.vocab_size(); ++i) {
    tokens.push_back(absl::StrReplaceAll(t.piece(i), {{" ", "\xe2\x96\x81"}}));
    scores.push_back(t.score(i));
    types.push_back(i == Tokenizer::kUnk                           ? kUnknown
                    : i == Tokenizer::kBos || i == Tokenizer::kEos ? kControl
                    : i >= 3 && i < 3 + 256                        ? kByte
                                                                   : kNormal);
  }
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStrings("tokenizer.ggml.tokens", tokens);
  w.SetFloat32s("tokenizer.ggml.scores", scores);
  w.SetInt32s("tokenizer.ggml.token_type", types);
  w.SetUint32("tokenizer.ggml.bos_token_id", Tokenizer::kBos);
  w.SetUint32("tokenizer.ggml.eos_token_id", Tokenizer::kEos);
  w.SetUint32("tokenizer.ggml.unknown_token_id", Tokenizer::kUnk);
  w.SetBool("tokenizer.ggml.add_bos_token", true);
  w.SetBool("tokenizer.ggml.add_eos_token", false);
}

}  // namespace

absl::Status ExportGguf(const Checkpoint& ckpt, const Tokenizer& tokenizer,
                        gguf::TensorType type, const std::string& name,
                        const std::string& path) {
  const Config& c = ckpt.config();
  const bool blocks =
      type == gguf::TensorType::kQ8_0 || type == gguf::TensorType::kQ4_0;
  if (blocks && (c.dim % ggml::kBlockValues != 0 ||
                 c.hidden_dim % ggml::kBlockValues != 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Q8_0 and Q4_0 need dim and hidden_dim to be multiples of 32 (",
        c.DebugString(), "); export F32, F16 or BF16"));
  }
  gguf::Writer w;
  w.SetString("general.architecture", "llama");
  w.SetString("general.name", name);
  w.SetUint32("general.alignment", gguf::kDefaultAlignment);
  w.SetUint32("llama.context_length", c.seq_len);
  w.SetUint32("llama.embedding_length", c.dim);
  w.SetUint32("llama.feed_forward_length", c.hidden_dim);
  w.SetUint32("llama.block_count", c.n_layers);
  w.SetUint32("llama.attention.head_count", c.n_heads);
  w.SetUint32("llama.attention.head_count_kv", c.n_kv_heads);
  w.SetUint32("llama.rope.dimension_count", c.head_size());
  w.SetFloat32("llama.rope.freq_base", c.rope_theta);
  w.SetFloat32("llama.attention.layer_norm_rms_epsilon", c.norm_eps);
  w.SetUint32("llama.vocab_size", c.vocab_size);
  AddTokenizer(w, tokenizer);

  AddMatrix(w, "token_embd.weight", ckpt.token_embedding(), type);
  AddVector(w, "output_norm.weight", ckpt.rms_final(), c.dim);
  if (!c.shared_classifier) {
    AddMatrix(w, "output.weight", ckpt.classifier(), type);
  }
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = ckpt.layer(l);
    const std::string p = absl::StrCat("blk.", l, ".");
    AddVector(w, p + "attn_norm.weight", L.rms_att, c.dim);
    AddMatrix(w, p + "attn_q.weight", L.wq, type);
    AddMatrix(w, p + "attn_k.weight", L.wk, type);
    AddMatrix(w, p + "attn_v.weight", L.wv, type);
    AddMatrix(w, p + "attn_output.weight", L.wo, type);
    AddVector(w, p + "ffn_norm.weight", L.rms_ffn, c.dim);
    AddMatrix(w, p + "ffn_gate.weight", L.w1, type);
    AddMatrix(w, p + "ffn_down.weight", L.w2, type);
    AddMatrix(w, p + "ffn_up.weight", L.w3, type);
  }
  return w.WriteFile(path);
}

}  // namespace joule::model
