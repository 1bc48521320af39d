#include "device/fpga/kernel/built_shapes.h"

#include "device/fpga/kernel/forward_kernel.h"

namespace joule::fpga {
namespace {

template <class S>
void Run(const int8_t* q8, const float* scales, const float* norms, int shared,
         int token, int pos, float* k, float* v, float* out) {
  Forward<S>(q8, scales, norms, shared, token, pos, k, v, out);
}

template <class S>
BuiltShape Make(const char* name) {
  model::Config c;
  c.dim = S::DIM;
  c.hidden_dim = S::HIDDEN;
  c.n_layers = S::LAYERS;
  c.n_heads = S::HEADS;
  c.n_kv_heads = S::KV_HEADS;
  c.vocab_size = S::VOCAB;
  c.seq_len = S::SEQ_LEN;
  return BuiltShape{name, c, S::GS, &Run<S>};
}

}  // namespace

const std::vector<BuiltShape>& BuiltShapes() {
  static const auto* shapes = new std::vector<BuiltShape>{
      Make<Shape<64, 172, 5, 8, 4, 512, 512, 4>>("stories260K, group size 4"),
      Make<Shape<288, 768, 6, 6, 6, 32000, 256, 32>>(
          "stories15M, group size 32"),
      Make<Shape<768, 2048, 12, 12, 12, 32000, 1024, 64>>(
          "stories110M, group size 64"),
  };
  return *shapes;
}

const BuiltShape* FindBuiltShape(const model::Config& c, int group_size) {
  for (const BuiltShape& s : BuiltShapes()) {
    const model::Config& b = s.config;
    if (b.dim == c.dim && b.hidden_dim == c.hidden_dim &&
        b.n_layers == c.n_layers && b.n_heads == c.n_heads &&
        b.n_kv_heads == c.n_kv_heads && b.vocab_size == c.vocab_size &&
        b.seq_len == c.seq_len && s.group_size == group_size) {
      return &s;
    }
  }
  return nullptr;
}

}  // namespace joule::fpga
