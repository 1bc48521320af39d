#ifndef JOULE_DEVICE_CPU_REFERENCE_ENGINE_H_
#define JOULE_DEVICE_CPU_REFERENCE_ENGINE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "device/device.h"
#include "model/checkpoint.h"

namespace joule::device {

// A clear, exact fp32 forward pass in the order llama2.c's run.c computes it
// (sequential fp32 sums, same RoPE and softmax), so its greedy tokens match
// the reference output. Version 2 checkpoints are dequantized to fp32 at
// load time. It is the correctness oracle for every faster driver; it is not
// fast.
class ReferenceEngine : public Device {
 public:
  struct Options {
    std::string name = "cpu-ref";
    int max_batch_size = 64;
    // 0: as many positions as fit in 1 GiB of KV cache (at least one full
    // context).
    int64_t kv_capacity_tokens = 0;
  };

  explicit ReferenceEngine(Options options);
  ~ReferenceEngine() override;

  Capabilities capabilities() const override;
  absl::Status LoadModel(const model::Checkpoint& ckpt) override;
  absl::Status Step(absl::Span<const SequenceChunk> batch,
                    StepOutput* out) override ABSL_LOCKS_EXCLUDED(mu_);
  void Release(SequenceId seq) override;
  int64_t kv_used_tokens() const override;

 private:
  struct Weights;
  struct Sequence {
    // [position][layer][kv_dim]: appending a position never moves old ones
    // within a layer's stride.
    std::vector<float> key;
    std::vector<float> value;
    int length = 0;
  };

  // One token through every layer; logits only when `logits` is non-null.
  void Forward(Sequence& seq, int token, int pos, float* logits)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Options options_;
  const model::Checkpoint* ckpt_ = nullptr;
  model::Config config_;
  std::unique_ptr<Weights> weights_;
  int64_t kv_capacity_ = 0;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<SequenceId, Sequence> sequences_ ABSL_GUARDED_BY(mu_);
  int64_t kv_used_ ABSL_GUARDED_BY(mu_) = 0;

  // Activations, reused across tokens.
  std::vector<float> x_, xb_, xb2_, hb_, hb2_, q_, att_;
};

}  // namespace joule::device

#endif  // JOULE_DEVICE_CPU_REFERENCE_ENGINE_H_
