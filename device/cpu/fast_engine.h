#ifndef JOULE_DEVICE_CPU_FAST_ENGINE_H_
#define JOULE_DEVICE_CPU_FAST_ENGINE_H_

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "device/cpu/kernels.h"
#include "device/cpu/packed_weights.h"
#include "device/cpu/thread_pool.h"
#include "device/device.h"
#include "model/checkpoint.h"

namespace joule::device {

// The fast CPU engine: int8 weights times int8-quantized activations (Q8_0,
// exact int32 block dots, fp32 across groups) for version 2 checkpoints and
// fp32 FMA kernels for version 0/1, with AVX-512 VNNI, AVX2 or generic code
// chosen at run time. Every step is batched: each weight row is read once
// for all the step's tokens (prefill chunks and every sequence's decode
// token), and rows are split across a thread pool sized to the cores.
class FastEngine : public Device {
 public:
  struct Options {
    std::string name = "cpu";
    int max_batch_size = 64;
    int max_step_tokens = 1024;      // Rows of the activation buffers.
    int64_t kv_capacity_tokens = 0;  // 0: 2 GiB worth, at least one context.
    int threads = 0;                 // 0: one per core.
    std::string isa;                 // "" best; "avx2"/"generic" to force.
    // KV cache entries of int8 models: "int8" (per-position scales, as
    // their activations) or "fp16". fp32 models keep fp32 entries.
    std::string kv_cache = "int8";
  };

  explicit FastEngine(Options options);
  ~FastEngine() override;

  Capabilities capabilities() const override;
  absl::Status LoadModel(const model::Checkpoint& ckpt) override;
  absl::Status Step(absl::Span<const SequenceChunk> batch,
                    StepOutput* out) override;
  void Release(SequenceId seq) override;
  int64_t kv_used_tokens() const override;

  const std::string& isa() const { return kernels_->isa; }
  // KV cache bytes one position of one sequence takes (the loaded model's;
  // keys and values of every layer).
  int64_t kv_bytes_per_token() const;

 private:
  struct Sequence;
  struct Matrix {
    const cpu::Q8Weights* q8 = nullptr;    // In q8_kernels_' layout.
    const cpu::F32Weights* f32 = nullptr;  // In kernels_' layout.
    int rows = 0, cols = 0;
  };
  struct Layer {
    const float* rms_att;
    const float* rms_ffn;
    Matrix wq, wk, wv, wo, w1, w2, w3;
  };
  // outs[i][t * rows_i + r] = mats[i] x rows of `in` (n tokens); one
  // parallel loop over all the matrices' rows.
  void Gemm(std::initializer_list<std::pair<const Matrix*, float*>> mats,
            const float* in, int n);

  Options options_;
  const cpu::Kernels* kernels_;
  // The int8 matmul's kernels: kernels_, unless its layout cannot hold
  // this model's group size (then the generic ones).
  const cpu::Kernels* q8_kernels_ = nullptr;
  std::unique_ptr<cpu::ThreadPool> pool_;
  const model::Checkpoint* ckpt_ = nullptr;
  model::Config c_;
  bool quantized_ = false;
  int gs_ = 0;
  std::vector<Layer> layers_;
  Matrix classifier_;
  const int8_t* Int8s(const model::Matrix& m);
  // A Q4_0 token embedding widened to int8, for lookups.
  std::deque<std::vector<int8_t>> widened_;
  const int8_t* embedding_q_ = nullptr;  // Row-major, for lookups.
  const float* embedding_s_ = nullptr;
  const float* embedding_f_ = nullptr;
  const float* rms_final_ = nullptr;
  int64_t kv_capacity_ = 0;
  enum class KvFormat { kF32, kF16, kI8 };
  KvFormat kv_format_ = KvFormat::kF32;
  // One KV head's keys (or values) for cpu::kKeyTile positions.
  int64_t kv_tile_bytes_ = 0;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<SequenceId, std::unique_ptr<Sequence>> sequences_
      ABSL_GUARDED_BY(mu_);
  // Released KV regions kept for the next sequences: mapping fresh pages
  // costs the kernel a page clear for every new request.
  std::vector<std::unique_ptr<Sequence>> free_ ABSL_GUARDED_BY(mu_);
  int64_t kv_used_ ABSL_GUARDED_BY(mu_) = 0;

  // Step buffers (one step at a time).
  std::vector<float> x_, xb_, q_, k_, v_, att_out_, xb2_, hb_, hb2_, last_;
  std::vector<int8_t> xq_;
  std::vector<std::unique_ptr<cpu::PackedQ8>> packed_;
  std::vector<std::unique_ptr<cpu::PackedF32>> packed_f32_;
  // RoPE rotation per position and pair, computed once with the reference's
  // formula (bit-identical values, no powf/cosf/sinf per token).
  std::vector<float> rope_cos_, rope_sin_;
  std::vector<float> xs_;
};

}  // namespace joule::device

#endif  // JOULE_DEVICE_CPU_FAST_ENGINE_H_
