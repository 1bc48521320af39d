#ifndef JOULE_DEVICE_RISCV_RISCV_DEVICE_H_
#define JOULE_DEVICE_RISCV_RISCV_DEVICE_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "device/device.h"
#include "device/riscv/sim/protocol.h"

namespace joule::device {

struct RiscvOptions {
  std::string name = "riscv";
  // "unix:/path" or "tcp:host:port" of a running riscv_simd. Empty: start
  // one as a child process (and restart it after a failure).
  std::string address;
  // For `address`: the file with the daemon's token (its --token_file). A
  // started daemon gets a fresh random token instead.
  std::string token_file;
  std::string daemon_binary;  // For starting one.
  std::string daemon_config;  // Its --config, if any.
  // The daemon's --riscv_engine ("tile" or "iss"); a daemon at `address`
  // must already run it. Empty: the daemon's default (tile).
  std::string engine;
  // More flags for a started daemon (benchmarks: --cost_table=none).
  std::vector<std::string> daemon_flags;
  int max_batch_size = 16;    // Also the number of KV slots.
  int max_step_tokens = 512;  // Rows of the activation buffers.
  absl::Duration io_timeout = absl::Seconds(120);
};

// The simulated RISC-V many-core as a Device: weights live in simulated HBM
// (uploaded once), each step is a burst of kernel launches (fused QKV and
// W1/W3 GEMMs, RMSNorm, RoPE, FlashAttention-2, SwiGLU) over the socket,
// and the step's time and energy are the simulator's cycle and energy
// counters (source: simulated). Figures are a model of the platform, not
// measurements.
class RiscvDevice : public Device {
 public:
  explicit RiscvDevice(RiscvOptions options);
  ~RiscvDevice() override;

  Capabilities capabilities() const override;
  absl::Status LoadModel(const model::Checkpoint& ckpt) override;
  absl::Status Step(absl::Span<const SequenceChunk> batch,
                    StepOutput* out) override;
  void Release(SequenceId seq) override;
  int64_t kv_used_tokens() const override;

  // The daemon this driver started (0 if it connects to one), for tests.
  pid_t daemon_pid() const;
  // The simulator's counters for the last step (deltas), for tests and
  // benchmarks.
  riscv::Counters last_step_counters() const;

 private:
  struct Layout;
  struct Slot {
    int index;
    int length = 0;
  };

  absl::Status EnsureConnected() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status StartDaemon() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Disconnect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status UploadWeights() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends one request and reads its reply's data.
  absl::Status Call(uint16_t opcode, const std::string& payload,
                    std::string* data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads HELLO's reply: the daemon's version must be ours, and its memory
  // must hold the model.
  absl::Status CheckHello(absl::string_view data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status VersionMismatch(absl::string_view detail) const;
  absl::Status RunStep(absl::Span<const SequenceChunk> batch, StepOutput* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  RiscvOptions options_;
  const model::Checkpoint* ckpt_ = nullptr;
  std::vector<float> embedding_;  // fp32 rows, dequantized if needed.

  mutable absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
  pid_t pid_ ABSL_GUARDED_BY(mu_) = 0;
  std::string socket_path_ ABSL_GUARDED_BY(mu_);
  std::string token_ ABSL_GUARDED_BY(mu_);  // What HELLO presents.
  uint32_t next_request_ ABSL_GUARDED_BY(mu_) = 1;
  std::string description_ ABSL_GUARDED_BY(mu_);
  double frequency_hz_ ABSL_GUARDED_BY(mu_) = 1e9;
  std::unique_ptr<Layout> layout_;
  absl::flat_hash_map<SequenceId, Slot> slots_ ABSL_GUARDED_BY(mu_);
  std::vector<int> free_slots_ ABSL_GUARDED_BY(mu_);
  riscv::Counters last_counters_ ABSL_GUARDED_BY(mu_);
  riscv::Counters last_step_ ABSL_GUARDED_BY(mu_);
};

}  // namespace joule::device

#endif  // JOULE_DEVICE_RISCV_RISCV_DEVICE_H_
