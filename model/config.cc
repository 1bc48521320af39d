#include "model/config.h"

#include "absl/strings/str_format.h"

namespace joule::model {

int64_t Config::ParameterCount() const {
  const int64_t d = dim, h = hidden_dim, l = n_layers, kv = kv_dim();
  int64_t per_layer = 2 * d         // rms_att, rms_ffn
                      + d * d * 2   // wq, wo
                      + d * kv * 2  // wk, wv
                      + d * h * 3;  // w1, w2, w3
  int64_t total = int64_t{vocab_size} * d + l * per_layer + d;
  if (!shared_classifier) total += int64_t{vocab_size} * d;
  return total;
}

double Config::FlopsPerToken(int pos) const {
  const double d = dim, h = hidden_dim, kv = kv_dim();
  double matmul = 2.0 * (d * d * 2 + d * kv * 2 + d * h * 3);
  double attention = 2.0 * 2.0 * n_heads * head_size() * (pos + 1.0);
  return n_layers * (matmul + attention) + 2.0 * d * vocab_size;
}

std::string Config::DebugString() const {
  std::string s = absl::StrFormat(
      "dim=%d hidden_dim=%d n_layers=%d n_heads=%d n_kv_heads=%d "
      "vocab_size=%d seq_len=%d shared_classifier=%d",
      dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len,
      shared_classifier);
  if (rope_theta != Config().rope_theta || norm_eps != Config().norm_eps) {
    absl::StrAppendFormat(&s, " rope_theta=%g norm_eps=%g", rope_theta,
                          norm_eps);
  }
  return s;
}

}  // namespace joule::model
