#include "device/fpga/vu9p_model.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace joule::fpga {

int64_t Vu9pModel::CyclesPerToken(const model::Config& c, int pos) const {
  const int64_t d = c.dim, h = c.hidden_dim, kv = c.kv_dim(),
                hs = c.head_size();
  // Rows and columns are one flattened pipeline: a single fill per matvec.
  auto matvec = [&](int64_t rows, int64_t cols) {
    return rows * ((cols + mac_lanes - 1) / mac_lanes) + pipeline_fill;
  };
  auto loop = [&](int64_t n) { return n + pipeline_fill; };
  const int64_t keys = pos + 1;
  int64_t layer = loop(d) * 2                          // RMSNorm: sum, scale
                  + matvec(d, d) + 2 * matvec(kv, d)   // q, k, v
                  + loop(d / 2) + loop(kv)             // RoPE, KV store
                  + c.n_heads * (keys * loop(hs)       // scores
                                 + 3 * loop(keys)      // max, exp, normalize
                                 + keys * loop(hs))    // weighted sum
                  + matvec(d, d) + loop(d)             // wo, residual
                  + loop(d) * 2 + 2 * matvec(h, d)     // RMSNorm, w1, w3
                  + loop(h) + matvec(d, h) + loop(d);  // SwiGLU, w2, residual
  return loop(d) + c.n_layers * layer + loop(d) * 2 + matvec(c.vocab_size, d);
}

double Vu9pModel::SecondsPerToken(const model::Config& c, int pos) const {
  const double compute = CyclesPerToken(c, pos) / clock_hz;
  // Every weight byte (int8 plus its scale share) crosses DDR once a token.
  const double weight_bytes = 1.0 * (c.ParameterCount());
  const double memory = weight_bytes / ddr_bytes_per_second;
  return std::max(compute, memory);
}

std::string Vu9pModel::Describe() const {
  return absl::StrFormat(
      "modeled VU9P design: %.0f MHz, %d MAC lanes, %.0f GB/s DDR, %.0f W "
      "board",
      clock_hz / 1e6, mac_lanes, ddr_bytes_per_second / 1e9, board_watts);
}

}  // namespace joule::fpga
