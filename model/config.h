#ifndef JOULE_MODEL_CONFIG_H_
#define JOULE_MODEL_CONFIG_H_

#include <cstdint>
#include <string>

namespace joule::model {

// Shape of a Llama 2 transformer as llama2.c stores it.
struct Config {
  int dim = 0;
  int hidden_dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int vocab_size = 0;
  int seq_len = 0;
  // The output classifier reuses the token embedding table.
  bool shared_classifier = true;
  // llama2.c's fixed values; a GGUF file may set others.
  float rope_theta = 10000.0f;
  float norm_eps = 1e-5f;

  int head_size() const { return dim / n_heads; }
  // RoPE base and RMS epsilon are llama2.c's, which engines built with
  // them fixed (the FPGA kernel, the RISC-V simulator) require.
  bool HasLlama2cConstants() const {
    return rope_theta == 10000.0f && norm_eps == 1e-5f;
  }
  int kv_dim() const { return n_kv_heads * head_size(); }
  // Weights, norms included (not the legacy RoPE tables).
  int64_t ParameterCount() const;
  // Matmul FLOPs to compute one token's logits at position `pos` (attention
  // over pos+1 cached positions included).
  double FlopsPerToken(int pos) const;
  std::string DebugString() const;
};

}  // namespace joule::model

#endif  // JOULE_MODEL_CONFIG_H_
