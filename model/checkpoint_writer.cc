#include "model/checkpoint_writer.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/checkpoint.h"
#include "model/quantize.h"

namespace joule::model {
namespace {

class Writer {
 public:
  explicit Writer(std::FILE* f) : f_(f) {}
  void Bytes(const void* p, size_t n) {
    if (ok_ && std::fwrite(p, 1, n, f_) != n) ok_ = false;
  }
  void I32(int32_t v) { Bytes(&v, 4); }
  void Floats(const std::vector<float>& v) { Bytes(v.data(), v.size() * 4); }
  bool ok() const { return ok_; }

 private:
  std::FILE* f_;
  bool ok_ = true;
};

bool PerLayer(Tensor t) {
  return t != Tensor::kTokenEmbedding && t != Tensor::kRmsFinal &&
         t != Tensor::kClassifier;
}

}  // namespace

int64_t TensorSize(const Config& c, Tensor t) {
  const int64_t d = c.dim, h = c.hidden_dim, kv = c.kv_dim();
  switch (t) {
    case Tensor::kTokenEmbedding:
    case Tensor::kClassifier:
      return int64_t{c.vocab_size} * d;
    case Tensor::kRmsAtt:
    case Tensor::kRmsFfn:
    case Tensor::kRmsFinal:
      return d;
    case Tensor::kWq:
    case Tensor::kWo:
      return d * d;
    case Tensor::kWk:
    case Tensor::kWv:
      return kv * d;
    case Tensor::kW1:
    case Tensor::kW2:
    case Tensor::kW3:
      return h * d;
  }
  return 0;
}

absl::Status WriteCheckpoint(const std::string& path, const Config& c,
                             int version, int group_size,
                             const TensorSource& source) {
  if (absl::Status s = ValidateConfig(c); !s.ok()) return s;
  if (version != 0 && version != 2) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cannot write version %d (use 0 or 2)", version));
  }
  if (version == 2) {
    if (group_size <= 0 || c.dim % group_size != 0 ||
        c.hidden_dim % group_size != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("group size %d must divide dim %d and hidden_dim %d",
                          group_size, c.dim, c.hidden_dim));
    }
  }
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  Writer w(f);
  std::vector<float> buf;
  std::vector<int8_t> q;
  std::vector<float> scales;
  auto fetch = [&](Tensor t, int layer) {
    buf.assign(TensorSize(c, t), 0.0f);
    source(t, layer, &buf);
  };
  auto emit_fp32 = [&](Tensor t) {
    for (int l = 0; l < (PerLayer(t) ? c.n_layers : 1); ++l) {
      fetch(t, l);
      w.Floats(buf);
    }
  };
  auto emit_q8 = [&](Tensor t) {
    for (int l = 0; l < (PerLayer(t) ? c.n_layers : 1); ++l) {
      fetch(t, l);
      q.resize(buf.size());
      scales.resize(buf.size() / group_size);
      QuantizeQ8_0(buf.data(), buf.size(), group_size, q.data(), scales.data());
      w.Bytes(q.data(), q.size());
      w.Floats(scales);
    }
  };

  if (version == 0) {
    w.I32(c.dim);
    w.I32(c.hidden_dim);
    w.I32(c.n_layers);
    w.I32(c.n_heads);
    w.I32(c.n_kv_heads);
    w.I32(c.shared_classifier ? c.vocab_size : -c.vocab_size);
    w.I32(c.seq_len);
    for (Tensor t :
         {Tensor::kTokenEmbedding, Tensor::kRmsAtt, Tensor::kWq, Tensor::kWk,
          Tensor::kWv, Tensor::kWo, Tensor::kRmsFfn, Tensor::kW1, Tensor::kW2,
          Tensor::kW3, Tensor::kRmsFinal}) {
      emit_fp32(t);
    }
    // Legacy RoPE tables, kept so llama2.c's own run.c reads the file.
    const int half = c.head_size() / 2;
    std::vector<float> cos_table(int64_t{c.seq_len} * half);
    std::vector<float> sin_table(cos_table.size());
    for (int pos = 0; pos < c.seq_len; ++pos) {
      for (int i = 0; i < half; ++i) {
        double freq = 1.0 / std::pow(10000.0, 2.0 * i / c.head_size());
        cos_table[int64_t{pos} * half + i] = std::cos(pos * freq);
        sin_table[int64_t{pos} * half + i] = std::sin(pos * freq);
      }
    }
    w.Floats(cos_table);
    w.Floats(sin_table);
    if (!c.shared_classifier) emit_fp32(Tensor::kClassifier);
  } else {
    unsigned char header[kV2HeaderBytes] = {0};
    const uint32_t magic = kCheckpointMagic;
    const int32_t fields[8] = {
        2,         c.dim,        c.hidden_dim, c.n_layers,
        c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len};
    std::memcpy(header, &magic, 4);
    std::memcpy(header + 4, fields, sizeof(fields));
    header[36] = c.shared_classifier ? 1 : 0;
    std::memcpy(header + 37, &group_size, 4);
    w.Bytes(header, sizeof(header));
    emit_fp32(Tensor::kRmsAtt);
    emit_fp32(Tensor::kRmsFfn);
    emit_fp32(Tensor::kRmsFinal);
    for (Tensor t :
         {Tensor::kTokenEmbedding, Tensor::kWq, Tensor::kWk, Tensor::kWv,
          Tensor::kWo, Tensor::kW1, Tensor::kW2, Tensor::kW3}) {
      emit_q8(t);
    }
    if (!c.shared_classifier) emit_q8(Tensor::kClassifier);
  }
  const bool closed = std::fclose(f) == 0;
  if (!w.ok() || !closed) {
    std::remove(tmp.c_str());
    return absl::DataLossError(absl::StrCat("failed writing ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

}  // namespace joule::model
