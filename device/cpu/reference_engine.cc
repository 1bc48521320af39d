#include "device/cpu/reference_engine.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "device/chunk_check.h"

namespace joule::device {
namespace {

// A matrix in fp32: a view into the mapped file, or owned after
// dequantizing a Q8_0 checkpoint.
struct F32Matrix {
  const float* data = nullptr;
  std::vector<float> owned;
  int rows = 0, cols = 0;

  void Load(const model::Matrix& m) {
    rows = m.rows;
    cols = m.cols;
    if (!m.quantized()) {
      data = m.f32;
      return;
    }
    owned.resize(m.size());
    for (int r = 0; r < rows; ++r)
      m.DequantizeRow(r, &owned[int64_t{r} * cols]);
    data = owned.data();
  }
};

// out[rows] = W[rows x cols] * x[cols], summed left to right in fp32 as
// llama2.c's matmul.
void Matmul(float* out, const float* x, const F32Matrix& w) {
  const int n = w.cols;
  for (int i = 0; i < w.rows; ++i) {
    const float* row = w.data + int64_t{i} * n;
    float val = 0.0f;
    for (int j = 0; j < n; ++j) val += row[j] * x[j];
    out[i] = val;
  }
}

void RmsNorm(float* out, const float* x, const float* weight, int size,
             float eps) {
  float ss = 0.0f;
  for (int j = 0; j < size; ++j) ss += x[j] * x[j];
  ss /= size;
  ss += eps;
  ss = 1.0f / sqrtf(ss);
  for (int j = 0; j < size; ++j) out[j] = weight[j] * (ss * x[j]);
}

void Softmax(float* x, int size) {
  float max_val = x[0];
  for (int i = 1; i < size; ++i) max_val = std::max(max_val, x[i]);
  float sum = 0.0f;
  for (int i = 0; i < size; ++i) {
    x[i] = expf(x[i] - max_val);
    sum += x[i];
  }
  for (int i = 0; i < size; ++i) x[i] /= sum;
}

}  // namespace

struct ReferenceEngine::Weights {
  struct Layer {
    const float* rms_att;
    const float* rms_ffn;
    F32Matrix wq, wk, wv, wo, w1, w2, w3;
  };
  F32Matrix embedding;
  F32Matrix classifier;  // Unused (embedding reused) when shared.
  const float* rms_final = nullptr;
  std::vector<Layer> layers;
};

ReferenceEngine::ReferenceEngine(Options options)
    : options_(std::move(options)) {}

ReferenceEngine::~ReferenceEngine() = default;

Capabilities ReferenceEngine::capabilities() const {
  Capabilities c;
  c.name = options_.name;
  c.kind = DeviceKind::kCpu;
  c.description = "CPU reference engine: exact fp32, one token at a time";
  c.max_batch_size = options_.max_batch_size;
  c.max_context = config_.seq_len;
  c.kv_capacity_tokens = kv_capacity_;
  c.precision = "fp32";
  c.energy_source = EnergySource::kNone;
  return c;
}

absl::Status ReferenceEngine::LoadModel(const model::Checkpoint& ckpt) {
  ckpt_ = &ckpt;
  config_ = ckpt.config();
  auto w = std::make_unique<Weights>();
  w->embedding.Load(ckpt.token_embedding());
  if (!config_.shared_classifier) w->classifier.Load(ckpt.classifier());
  w->rms_final = ckpt.rms_final();
  w->layers.resize(config_.n_layers);
  for (int l = 0; l < config_.n_layers; ++l) {
    const model::LayerWeights& src = ckpt.layer(l);
    Weights::Layer& dst = w->layers[l];
    dst.rms_att = src.rms_att;
    dst.rms_ffn = src.rms_ffn;
    dst.wq.Load(src.wq);
    dst.wk.Load(src.wk);
    dst.wv.Load(src.wv);
    dst.wo.Load(src.wo);
    dst.w1.Load(src.w1);
    dst.w2.Load(src.w2);
    dst.w3.Load(src.w3);
  }
  weights_ = std::move(w);
  const int64_t bytes_per_token =
      int64_t{2} * config_.n_layers * config_.kv_dim() * sizeof(float);
  kv_capacity_ = options_.kv_capacity_tokens > 0
                     ? options_.kv_capacity_tokens
                     : std::max<int64_t>(config_.seq_len,
                                         (int64_t{1} << 30) / bytes_per_token);
  const int d = config_.dim;
  x_.assign(d, 0);
  xb_.assign(d, 0);
  xb2_.assign(d, 0);
  q_.assign(d, 0);
  hb_.assign(config_.hidden_dim, 0);
  hb2_.assign(config_.hidden_dim, 0);
  att_.assign(config_.seq_len, 0);
  return absl::OkStatus();
}

absl::Status ReferenceEngine::Step(absl::Span<const SequenceChunk> batch,
                                   StepOutput* out) {
  if (weights_ == nullptr) {
    return absl::FailedPreconditionError("no model loaded");
  }
  const absl::Time start = absl::Now();
  // Held for the whole step so a concurrent Release cannot free a cache in
  // use.
  absl::MutexLock lock(&mu_);
  {
    // Check the whole batch before touching any cache, so a bad step
    // changes nothing.
    const absl::StatusOr<int64_t> checked =
        CheckBatch(batch,
                   [this](SequenceId id) {
                     auto it = sequences_.find(id);
                     return it == sequences_.end() ? 0 : it->second.length;
                   },
                   config_, {options_.max_batch_size, 0});
    if (!checked.ok()) return checked.status();
    const int64_t new_tokens = *checked;
    if (kv_used_ + new_tokens > kv_capacity_) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "KV cache full: %d of %d positions used, step needs %d more",
          kv_used_, kv_capacity_, new_tokens));
    }
    kv_used_ += new_tokens;
  }
  out->vocab_size = config_.vocab_size;
  out->logits.resize(batch.size() * static_cast<size_t>(config_.vocab_size));
  for (size_t i = 0; i < batch.size(); ++i) {
    const SequenceChunk& c = batch[i];
    Sequence& s = sequences_[c.seq];
    for (size_t k = 0; k < c.tokens.size(); ++k) {
      const bool last = k + 1 == c.tokens.size();
      Forward(s, c.tokens[k], c.start_pos + static_cast<int>(k),
              last ? out->row(static_cast<int>(i)).data() : nullptr);
    }
  }
  out->device_time = absl::Now() - start;
  return absl::OkStatus();
}

void ReferenceEngine::Forward(Sequence& s, int token, int pos, float* logits) {
  const model::Config& p = config_;
  const Weights& w = *weights_;
  const int dim = p.dim, kv_dim = p.kv_dim(), hidden = p.hidden_dim;
  const int head_size = p.head_size();
  const int kv_mul = p.n_heads / p.n_kv_heads;
  const int64_t stride = int64_t{p.n_layers} * kv_dim;  // One position.
  s.key.resize((pos + 1) * stride);
  s.value.resize((pos + 1) * stride);
  s.length = pos + 1;

  float* x = x_.data();
  std::copy_n(w.embedding.data + int64_t{token} * dim, dim, x);

  for (int l = 0; l < p.n_layers; ++l) {
    const Weights::Layer& lw = w.layers[l];
    RmsNorm(xb_.data(), x, lw.rms_att, dim, p.norm_eps);

    float* k = s.key.data() + pos * stride + int64_t{l} * kv_dim;
    float* v = s.value.data() + pos * stride + int64_t{l} * kv_dim;
    Matmul(q_.data(), xb_.data(), lw.wq);
    Matmul(k, xb_.data(), lw.wk);
    Matmul(v, xb_.data(), lw.wv);

    // RoPE: rotate pairs of q (and of k within kv_dim) by position.
    for (int i = 0; i < dim; i += 2) {
      const int head_dim = i % head_size;
      const float freq = 1.0f / powf(p.rope_theta, head_dim / (float)head_size);
      const float val = pos * freq;
      const float fcr = cosf(val), fci = sinf(val);
      const int rotn = i < kv_dim ? 2 : 1;
      for (int r = 0; r < rotn; ++r) {
        float* vec = r == 0 ? q_.data() : k;
        const float v0 = vec[i], v1 = vec[i + 1];
        vec[i] = v0 * fcr - v1 * fci;
        vec[i + 1] = v0 * fci + v1 * fcr;
      }
    }

    // Grouped-query attention over positions 0..pos.
    for (int h = 0; h < p.n_heads; ++h) {
      const float* qh = q_.data() + h * head_size;
      const int kv_off = l * kv_dim + (h / kv_mul) * head_size;
      float* att = att_.data();
      for (int t = 0; t <= pos; ++t) {
        const float* kt = s.key.data() + t * stride + kv_off;
        float score = 0.0f;
        for (int i = 0; i < head_size; ++i) score += qh[i] * kt[i];
        att[t] = score / sqrtf(head_size);
      }
      Softmax(att, pos + 1);
      float* xb = xb_.data() + h * head_size;
      std::fill_n(xb, head_size, 0.0f);
      for (int t = 0; t <= pos; ++t) {
        const float* vt = s.value.data() + t * stride + kv_off;
        const float a = att[t];
        for (int i = 0; i < head_size; ++i) xb[i] += a * vt[i];
      }
    }
    Matmul(xb2_.data(), xb_.data(), lw.wo);
    for (int i = 0; i < dim; ++i) x[i] += xb2_[i];

    // SwiGLU feed-forward: w2(silu(w1 x) * w3 x).
    RmsNorm(xb_.data(), x, lw.rms_ffn, dim, p.norm_eps);
    Matmul(hb_.data(), xb_.data(), lw.w1);
    Matmul(hb2_.data(), xb_.data(), lw.w3);
    for (int i = 0; i < hidden; ++i) {
      float val = hb_[i];
      val *= (1.0f / (1.0f + expf(-val)));
      hb_[i] = val * hb2_[i];
    }
    Matmul(xb_.data(), hb_.data(), lw.w2);
    for (int i = 0; i < dim; ++i) x[i] += xb_[i];
  }
  if (logits == nullptr) return;
  RmsNorm(x, x, w.rms_final, dim, p.norm_eps);
  Matmul(logits, x, p.shared_classifier ? w.embedding : w.classifier);
}

void ReferenceEngine::Release(SequenceId seq) {
  absl::MutexLock lock(&mu_);
  auto it = sequences_.find(seq);
  if (it == sequences_.end()) return;
  kv_used_ -= it->second.length;
  sequences_.erase(it);
}

int64_t ReferenceEngine::kv_used_tokens() const {
  absl::MutexLock lock(&mu_);
  return kv_used_;
}

}  // namespace joule::device
