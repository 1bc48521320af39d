#include "device/cpu/fast_engine.h"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "device/chunk_check.h"
#include "device/cpu/cache_tiles.h"
#include "model/ggml_quants.h"

namespace joule::device {

// A sequence's KV cache, reserved for the whole context but backed by the
// OS only as it is written: keys [layer][kv head], then values [layer][kv
// head], each head's in tiles of kKeyTile positions (cache_tiles.h), the
// layout Kernels::attend reads. Entries are int8 (or fp16) for int8 models,
// fp32 otherwise.
struct FastEngine::Sequence {
  char* base = nullptr;
  size_t bytes = 0;
  int length = 0;
  ~Sequence() {
    if (base != nullptr) munmap(base, bytes);
  }
};

FastEngine::FastEngine(Options options)
    : options_(std::move(options)),
      kernels_(&cpu::SelectKernels(options_.isa)),
      pool_(std::make_unique<cpu::ThreadPool>(options_.threads)) {}

FastEngine::~FastEngine() = default;

Capabilities FastEngine::capabilities() const {
  Capabilities c;
  c.name = options_.name;
  c.kind = DeviceKind::kCpu;
  c.description =
      absl::StrFormat("CPU engine: %s kernels, %d threads, batched steps",
                      kernels_->isa, pool_->size());
  c.max_batch_size = options_.max_batch_size;
  c.max_step_tokens = options_.max_step_tokens;
  c.max_context = c_.seq_len;
  c.kv_capacity_tokens = kv_capacity_;
  c.precision = !quantized_ ? "fp32"
                : kv_format_ == KvFormat::kI8
                    ? "int8 weights and activations (Q8_0), int8 KV cache"
                    : "int8 weights and activations (Q8_0), fp16 KV cache";
  return c;
}

int64_t FastEngine::kv_bytes_per_token() const {
  return 2 * int64_t{c_.n_layers} * c_.n_kv_heads * kv_tile_bytes_ /
         cpu::kKeyTile;
}

// The token embedding is only looked up, a row per token: a Q4_0 one is
// widened once at load (exact: a nibble n is the int8 n - 8 with the same
// scale) so lookups stay one copy.
const int8_t* FastEngine::Int8s(const model::Matrix& m) {
  if (m.q4 == nullptr) return m.q;
  std::vector<int8_t>& w = widened_.emplace_back(m.size());
  model::ggml::WidenQ4_0(m.q4, m.size(), w.data());
  return w.data();
}

absl::Status FastEngine::LoadModel(const model::Checkpoint& ckpt) {
  if (options_.kv_cache != "int8" && options_.kv_cache != "fp16") {
    return absl::InvalidArgumentError(absl::StrFormat(
        "unknown KV cache format '%s'; use int8 or fp16", options_.kv_cache));
  }
  ckpt_ = &ckpt;
  c_ = ckpt.config();
  quantized_ = ckpt.format() != model::WeightFormat::kFp32;
  gs_ = ckpt.group_size();
  if (quantized_ && (c_.dim % gs_ != 0 || c_.hidden_dim % gs_ != 0)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("group size %d must divide dim %d and hidden_dim %d "
                        "for int8 activations; "
                        "re-export with model:convert_tool",
                        gs_, c_.dim, c_.hidden_dim));
  }
  // The packed layouts need 4-byte column quads inside each group.
  q8_kernels_ = kernels_->row_block == 1 || gs_ % 4 == 0
                    ? kernels_
                    : &cpu::GenericKernels();
  packed_.clear();
  packed_f32_.clear();
  widened_.clear();
  auto view = [&](const model::Matrix& m) {
    Matrix v;
    v.rows = m.rows;
    v.cols = m.cols;
    if (m.q4 != nullptr) {
      // Nibbles in the kernels' tiles: half of Q8_0's bytes per token.
      packed_.push_back(cpu::PackedQ8::FromQ4_0(
          m.q4, m.scales, m.rows, m.cols, q8_kernels_->row_block,
          q8_kernels_->unsigned_activations));
      v.q8 = &packed_.back()->weights();
    } else if (m.quantized()) {
      packed_.push_back(std::make_unique<cpu::PackedQ8>(
          m.q, m.scales, m.rows, m.cols, gs_, q8_kernels_->row_block,
          q8_kernels_->unsigned_activations));
      v.q8 = &packed_.back()->weights();
    } else {
      packed_f32_.push_back(std::make_unique<cpu::PackedF32>(
          m.f32, m.rows, m.cols, kernels_->f32_row_block));
      v.f32 = &packed_f32_.back()->weights();
    }
    return v;
  };
  layers_.clear();
  for (int l = 0; l < c_.n_layers; ++l) {
    const model::LayerWeights& w = ckpt.layer(l);
    layers_.push_back({w.rms_att, w.rms_ffn, view(w.wq), view(w.wk), view(w.wv),
                       view(w.wo), view(w.w1), view(w.w2), view(w.w3)});
  }
  embedding_q_ = ckpt.token_embedding().quantized()
                     ? Int8s(ckpt.token_embedding())
                     : nullptr;
  embedding_s_ = ckpt.token_embedding().scales;
  embedding_f_ = ckpt.token_embedding().f32;
  classifier_ = view(ckpt.classifier());
  rms_final_ = ckpt.rms_final();
  const int HS = c_.head_size();
  // int8 models' activations carry 8 bits, so their cache needs no more:
  // int8 entries with a scale per position and head, as the activations'
  // per-group scales. Attention reads the whole cache every step, so this
  // halves its bytes against fp16 (a quarter of fp32).
  kv_format_ = !quantized_ ? KvFormat::kF32
               : options_.kv_cache == "int8" && HS <= cpu::kMaxI8HeadSize
                   ? KvFormat::kI8
                   : KvFormat::kF16;
  kv_tile_bytes_ =
      kv_format_ == KvFormat::kI8    ? cpu::CacheTile<int8_t>::Bytes(HS)
      : kv_format_ == KvFormat::kF16 ? cpu::CacheTile<uint16_t>::Bytes(HS)
                                     : cpu::CacheTile<float>::Bytes(HS);
  kv_capacity_ = options_.kv_capacity_tokens > 0
                     ? options_.kv_capacity_tokens
                     : std::max<int64_t>(c_.seq_len, (int64_t{2} << 30) /
                                                         kv_bytes_per_token());
  rope_cos_.assign(size_t(c_.seq_len) * HS / 2, 0);
  rope_sin_.assign(rope_cos_.size(), 0);
  for (int pos = 0; pos < c_.seq_len; ++pos) {
    for (int head_dim = 0; head_dim < HS; head_dim += 2) {
      const float freq = 1.0f / powf(c_.rope_theta, head_dim / (float)HS);
      const float val = pos * freq;
      rope_cos_[size_t(pos) * HS / 2 + head_dim / 2] = cosf(val);
      rope_sin_[size_t(pos) * HS / 2 + head_dim / 2] = sinf(val);
    }
  }
  const size_t T = options_.max_step_tokens;
  x_.assign(T * c_.dim, 0);
  xb_.assign(T * c_.dim, 0);
  xb2_.assign(T * c_.dim, 0);
  q_.assign(T * c_.dim, 0);
  k_.assign(T * c_.kv_dim(), 0);
  v_.assign(T * c_.kv_dim(), 0);
  att_out_.assign(T * c_.dim, 0);
  hb_.assign(T * c_.hidden_dim, 0);
  hb2_.assign(T * c_.hidden_dim, 0);
  last_.assign(size_t(options_.max_batch_size) * c_.dim, 0);
  const int widest = std::max(c_.dim, c_.hidden_dim);
  xq_.assign(T * widest, 0);
  xs_.assign(T * widest / std::max(1, gs_), 0);
  return absl::OkStatus();
}

void FastEngine::Gemm(
    std::initializer_list<std::pair<const Matrix*, float*>> mats,
    const float* in, int n) {
  const int cols = mats.begin()->first->cols;
  if (quantized_) {
    // Quantize the shared input once: rows of int8 with per-group scales.
    const int groups = cols / gs_;
    pool_->ParallelFor(
        n,
        [&](int b0, int b1) {
          for (int t = b0; t < b1; ++t) {
            q8_kernels_->quantize(in + int64_t{t} * cols, cols, gs_,
                                  xq_.data() + int64_t{t} * cols,
                                  xs_.data() + int64_t{t} * groups);
          }
        },
        8);
  }
  // One parallel loop over all the matrices' rows, in units of the packed
  // layouts' row blocks.
  auto units = [&](const Matrix& m) {
    return quantized_ ? m.q8->blocks() : m.f32->blocks();
  };
  int total = 0;
  for (const auto& m : mats) total += units(*m.first);
  pool_->ParallelFor(
      total,
      [&](int u0, int u1) {
        int base = 0;
        for (const auto& [m, out] : mats) {
          const int n_units = units(*m);
          const int lo = std::max(u0, base), hi = std::min(u1, base + n_units);
          if (lo < hi) {
            if (quantized_) {
              q8_kernels_->q8_gemm(*m->q8, xq_.data(), xs_.data(), n, out,
                                   m->rows, lo - base, hi - base);
            } else {
              kernels_->f32_gemm(*m->f32, in, n, out, m->rows, lo - base,
                                 hi - base);
            }
          }
          base += n_units;
        }
      },
      // A pair of 16-row blocks is the packed kernels' widest tile.
      std::max(2, 32 / (quantized_ ? q8_kernels_->row_block
                                   : kernels_->f32_row_block)));
}

absl::Status FastEngine::Step(absl::Span<const SequenceChunk> batch,
                              StepOutput* out) {
  if (ckpt_ == nullptr) return absl::FailedPreconditionError("no model loaded");
  const absl::Time start = absl::Now();
  const int D = c_.dim, KV = c_.kv_dim(), H = c_.hidden_dim,
            HS = c_.head_size();
  const int kv_mul = c_.n_heads / c_.n_kv_heads;
  // Cache positions per layer: the context rounded up to whole key tiles.
  const int64_t cache_len =
      (c_.seq_len + cpu::kKeyTile - 1) / cpu::kKeyTile * cpu::kKeyTile;
  const int64_t kv_head_bytes = cache_len / cpu::kKeyTile * kv_tile_bytes_;
  // Rows of this step: (sequence, position, token).
  struct Row {
    Sequence* seq;
    int pos;
  };
  std::vector<Row> rows;
  std::vector<int> last_row(batch.size());
  absl::MutexLock lock(&mu_);
  const absl::StatusOr<int64_t> new_tokens =
      CheckBatch(batch,
                 [this](SequenceId id) {
                   auto it = sequences_.find(id);
                   return it == sequences_.end() ? 0 : it->second->length;
                 },
                 c_, {options_.max_batch_size, options_.max_step_tokens});
  if (!new_tokens.ok()) return new_tokens.status();
  if (kv_used_ + *new_tokens > kv_capacity_) {
    return absl::ResourceExhaustedError("KV cache full");
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    const SequenceChunk& ch = batch[i];
    auto& slot = sequences_[ch.seq];
    if (slot == nullptr && !free_.empty()) {
      slot = std::move(
          free_.back());  // Stale contents are overwritten before use.
      free_.pop_back();
      slot->length = 0;
    }
    if (slot == nullptr) {
      slot = std::make_unique<Sequence>();
      slot->bytes = size_t(kv_head_bytes) * 2 * c_.n_layers * c_.n_kv_heads;
      void* p = mmap(nullptr, slot->bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) {
        sequences_.erase(ch.seq);
        return absl::ResourceExhaustedError("cannot reserve a KV cache");
      }
      slot->base = static_cast<char*>(p);
    }
    for (size_t k = 0; k < ch.tokens.size(); ++k) {
      const int r = static_cast<int>(rows.size());
      rows.push_back({slot.get(), ch.start_pos + static_cast<int>(k)});
      // Embedding row (dequantized for int8 checkpoints).
      float* xr = x_.data() + int64_t{r} * D;
      const int64_t e = int64_t{ch.tokens[k]} * D;
      if (quantized_) {
        for (int j = 0; j < D; ++j)
          xr[j] = embedding_q_[e + j] * embedding_s_[(e + j) / gs_];
      } else {
        std::memcpy(xr, embedding_f_ + e, sizeof(float) * D);
      }
    }
    last_row[i] = static_cast<int>(rows.size()) - 1;
  }
  const int N = static_cast<int>(rows.size());
  const int B = static_cast<int>(batch.size());
  std::vector<int> first_row(B);
  for (int i = 0; i < B; ++i) {
    first_row[i] = last_row[i] + 1 - static_cast<int>(batch[i].tokens.size());
  }
  // One KV head's keys and values, in tiles (cache_tiles.h).
  const int KVH = c_.n_kv_heads;
  auto keys = [&](const Row& row, int layer, int kvh) {
    return row.seq->base + (int64_t{layer} * KVH + kvh) * kv_head_bytes;
  };
  auto values = [&](const Row& row, int layer, int kvh) {
    return row.seq->base +
           ((int64_t{c_.n_layers} + layer) * KVH + kvh) * kv_head_bytes;
  };
  // Rotates one head's pairs of dimensions by the row's position.
  auto rope = [&](float* v, int pos) {
    const float* cos_row = rope_cos_.data() + size_t(pos) * HS / 2;
    const float* sin_row = rope_sin_.data() + size_t(pos) * HS / 2;
    for (int d = 0; d < HS; d += 2) {
      const float fcr = cos_row[d / 2], fci = sin_row[d / 2];
      const float v0 = v[d], v1 = v[d + 1];
      v[d] = v0 * fcr - v1 * fci;
      v[d + 1] = v0 * fci + v1 * fcr;
    }
  };
  // RoPE on row t's query heads that share KV head kvh and on its key, and
  // the key and value into the cache.
  auto rope_and_store = [&](const Row& row, int t, int layer, int kvh) {
    for (int h = kvh * kv_mul; h < (kvh + 1) * kv_mul; ++h)
      rope(q_.data() + int64_t{t} * D + h * HS, row.pos);
    float* k = k_.data() + int64_t{t} * KV + kvh * HS;
    const float* v = v_.data() + int64_t{t} * KV + kvh * HS;
    rope(k, row.pos);
    const int64_t key_at =
        int64_t{row.pos / cpu::kKeyTile} * HS * cpu::kKeyTile +
        row.pos % cpu::kKeyTile;
    char* kc = keys(row, layer, kvh);
    char* vc = values(row, layer, kvh);
    if (kv_format_ == KvFormat::kI8) {
      kernels_->store_i8(k, v, HS, row.pos, reinterpret_cast<int8_t*>(kc),
                         reinterpret_cast<int8_t*>(vc));
    } else if (kv_format_ == KvFormat::kF16) {
      kernels_->to_f16(k, HS, reinterpret_cast<uint16_t*>(kc) + key_at,
                       cpu::kKeyTile);
      kernels_->to_f16(
          v, HS, reinterpret_cast<uint16_t*>(vc) + int64_t{row.pos} * HS, 1);
    } else {
      float* kt = reinterpret_cast<float*>(kc) + key_at;
      for (int d = 0; d < HS; ++d) kt[d * cpu::kKeyTile] = k[d];
      std::memcpy(reinterpret_cast<float*>(vc) + int64_t{row.pos} * HS, v,
                  sizeof(float) * HS);
    }
  };
  auto rmsnorm = [&](float* out_rows, const float* in_rows, const float* w,
                     int n) {
    pool_->ParallelFor(
        n,
        [&](int t0, int t1) {
          for (int t = t0; t < t1; ++t) {
            const float* xr = in_rows + int64_t{t} * D;
            float ss = kernels_->dot(xr, xr, D) / D + c_.norm_eps;
            ss = 1.0f / sqrtf(ss);
            float* o = out_rows + int64_t{t} * D;
            for (int j = 0; j < D; ++j) o[j] = w[j] * (ss * xr[j]);
          }
        },
        4);
  };

  for (int l = 0; l < c_.n_layers; ++l) {
    const Layer& L = layers_[l];
    rmsnorm(xb_.data(), x_.data(), L.rms_att, N);
    Gemm({{&L.wq, q_.data()}, {&L.wk, k_.data()}, {&L.wv, v_.data()}},
         xb_.data(), N);
    // One job per (chunk, KV head): RoPE, the chunk's keys and values into
    // the cache, then attention for the query heads that share them, token
    // by token so each sees the positions before it. Jobs read a few KB of
    // cache each, too short a stream for the hardware prefetchers to ramp
    // up on, so a job's last attention pulls in the next job's cache tile
    // by tile as it reads its own (int8 cache, 16 sequences at positions
    // 0-255, six interleaved pairs: 1479 tok/s against 1425 prefetching the
    // next job's first 16 KB in one burst at the start of each job, which
    // had been 2120 against 1985 without prefetch at positions 0-63).
    const float inv_sqrt = 1.0f / sqrtf(static_cast<float>(HS));
    pool_->ParallelFor(
        B * KVH,
        [&](int j0, int j1) {
          thread_local std::vector<float> scores;
          scores.resize(cache_len);
          for (int j = j0; j < j1; ++j) {
            const int i = j / KVH, kvh = j % KVH;
            const char* next_keys = nullptr;
            const char* next_values = nullptr;
            if (j + 1 < B * KVH) {
              const Row& next = rows[last_row[(j + 1) / KVH]];
              next_keys = keys(next, l, (j + 1) % KVH);
              next_values = values(next, l, (j + 1) % KVH);
            }
            for (int t = first_row[i]; t <= last_row[i]; ++t) {
              rope_and_store(rows[t], t, l, kvh);
              for (int h = kvh * kv_mul; h < (kvh + 1) * kv_mul; ++h) {
                const float* q = q_.data() + int64_t{t} * D + h * HS;
                float* o = att_out_.data() + int64_t{t} * D + h * HS;
                const int n = rows[t].pos + 1;
                // The job's last attention prefetches for the next job.
                const bool last =
                    t == last_row[i] && h == (kvh + 1) * kv_mul - 1;
                const char* nk = last ? next_keys : nullptr;
                const char* nv = last ? next_values : nullptr;
                if (kv_format_ == KvFormat::kI8) {
                  kernels_->attend_i8(
                      q, reinterpret_cast<const int8_t*>(keys(rows[t], l, kvh)),
                      reinterpret_cast<const int8_t*>(values(rows[t], l, kvh)),
                      n, HS, inv_sqrt, scores.data(), o,
                      reinterpret_cast<const int8_t*>(nk),
                      reinterpret_cast<const int8_t*>(nv));
                } else if (kv_format_ == KvFormat::kF16) {
                  kernels_->attend_f16(
                      q,
                      reinterpret_cast<const uint16_t*>(keys(rows[t], l, kvh)),
                      reinterpret_cast<const uint16_t*>(
                          values(rows[t], l, kvh)),
                      n, HS, inv_sqrt, scores.data(), o,
                      reinterpret_cast<const uint16_t*>(nk),
                      reinterpret_cast<const uint16_t*>(nv));
                } else {
                  kernels_->attend(
                      q, reinterpret_cast<const float*>(keys(rows[t], l, kvh)),
                      reinterpret_cast<const float*>(values(rows[t], l, kvh)),
                      n, HS, inv_sqrt, scores.data(), o,
                      reinterpret_cast<const float*>(nk),
                      reinterpret_cast<const float*>(nv));
                }
              }
            }
          }
        },
        1);
    Gemm({{&L.wo, xb2_.data()}}, att_out_.data(), N);
    for (int64_t i = 0; i < int64_t{N} * D; ++i) x_[i] += xb2_[i];

    rmsnorm(xb_.data(), x_.data(), L.rms_ffn, N);
    Gemm({{&L.w1, hb_.data()}, {&L.w3, hb2_.data()}}, xb_.data(), N);
    pool_->ParallelFor(
        N * H,
        [&](int i0, int i1) {
          if (quantized_) {
            kernels_->swiglu(hb_.data() + i0, hb2_.data() + i0, i1 - i0);
            return;
          }
          for (int i = i0; i < i1;
               ++i) {  // fp32: libm's expf, as the reference.
            const float val = hb_[i];
            hb_[i] = val * (1.0f / (1.0f + expf(-val))) * hb2_[i];
          }
        },
        1024);
    Gemm({{&L.w2, xb2_.data()}}, hb_.data(), N);
    for (int64_t i = 0; i < int64_t{N} * D; ++i) x_[i] += xb2_[i];
  }

  // Logits for each sequence's last position only.
  for (int i = 0; i < B; ++i) {
    std::memcpy(last_.data() + int64_t{i} * D,
                x_.data() + int64_t{last_row[i]} * D, sizeof(float) * D);
  }
  rmsnorm(last_.data(), last_.data(), rms_final_, B);
  out->vocab_size = c_.vocab_size;
  out->logits.resize(size_t(B) * c_.vocab_size);
  Gemm({{&classifier_, out->logits.data()}}, last_.data(), B);

  for (const SequenceChunk& ch : batch) {
    sequences_[ch.seq]->length =
        ch.start_pos + static_cast<int>(ch.tokens.size());
  }
  kv_used_ += *new_tokens;
  out->device_time = absl::Now() - start;
  return absl::OkStatus();
}

void FastEngine::Release(SequenceId seq) {
  absl::MutexLock lock(&mu_);
  auto it = sequences_.find(seq);
  if (it == sequences_.end()) return;
  kv_used_ -= it->second->length;
  if (static_cast<int>(free_.size()) < options_.max_batch_size) {
    free_.push_back(std::move(it->second));
  }
  sequences_.erase(it);
}

int64_t FastEngine::kv_used_tokens() const {
  absl::MutexLock lock(&mu_);
  return kv_used_;
}

}  // namespace joule::device
