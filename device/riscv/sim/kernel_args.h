#ifndef JOULE_DEVICE_RISCV_SIM_KERNEL_ARGS_H_
#define JOULE_DEVICE_RISCV_SIM_KERNEL_ARGS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "device/riscv/sim/memory.h"

// The protocol's kernel launches (protocol.md, "Kernels"), validated and
// typed once for every execution engine. Each argument comes from the
// client, so every check is overflow-safe and every tensor is checked
// against simulated memory before a kernel touches it; the first failure
// names the kernel and the argument.
namespace joule::riscv {

// Y[N,M] (+)= X[N,K] W[M,K]^T.
struct GemmArgs {
  uint64_t w, x, y, m, k, n;
  bool accumulate;
  uint64_t flag;
};
// out[N,D] = x * w / rms(x), eps 1e-5.
struct RmsNormArgs {
  uint64_t x, w, out, n, d, flag;
};
// Rotates the q part (dim floats at q_off) and the k part (kv_dim at
// k_off) of N rows `stride` floats apart, row n by positions[n].
struct RopeArgs {
  uint64_t base, positions, n, stride, q_off, k_off, dim, kv_dim, head, flag;
};
// One query's keys: K and V are keys x kv_dim floats.
struct AttentionQuery {
  uint64_t k, v, keys;
};
struct AttentionArgs {
  uint64_t q, q_stride, out, n, heads, kv_heads, head, flag;
  // A snapshot of the descriptors, taken when they were checked.
  std::vector<AttentionQuery> queries;
};
// out[N,H] = silu(h[n, j]) * h[n, H + j].
struct SwiGluArgs {
  uint64_t h, out, n, hidden, flag;
};
struct CopyTransfer {
  uint64_t src, dst, bytes;
};
struct CopyArgs {
  std::vector<CopyTransfer> transfers;  // Snapshot, every one checked.
  uint64_t flag;
};

absl::StatusOr<GemmArgs> ParseGemm(const std::vector<uint64_t>& a,
                                   const Memory& mem);
absl::StatusOr<RmsNormArgs> ParseRmsNorm(const std::vector<uint64_t>& a,
                                         const Memory& mem);
absl::StatusOr<RopeArgs> ParseRope(const std::vector<uint64_t>& a,
                                   const Memory& mem);
absl::StatusOr<AttentionArgs> ParseAttention(const std::vector<uint64_t>& a,
                                             const Memory& mem);
absl::StatusOr<SwiGluArgs> ParseSwiGlu(const std::vector<uint64_t>& a,
                                       const Memory& mem);
absl::StatusOr<CopyArgs> ParseCopy(const std::vector<uint64_t>& a,
                                   const Memory& mem);

// Sets the launch's completion flag (0: none) to 1; its range was checked
// with the arguments.
void SignalDone(Memory& mem, uint64_t flag);

// The reference engine's RoPE frequency for element i of a head vector of
// `head` floats, and the rotation it makes at `pos` (cos, sin).
void RopeRotation(int32_t pos, uint64_t i, uint64_t head, float* cos_out,
                  float* sin_out);

}  // namespace joule::riscv

#endif  // JOULE_DEVICE_RISCV_SIM_KERNEL_ARGS_H_
