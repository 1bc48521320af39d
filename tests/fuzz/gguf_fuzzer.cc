// GGUF files from outside: the container parser, every typed metadata
// look-up the loaders make, the tokenizer built from the metadata, and the
// model loader (Checkpoint::Open) on the same bytes. Each either refuses
// with a status or returns views inside the input (the first and last
// element of every tensor and weight row are read, so ASan sees overruns).
#include <cstdint>
#include <vector>

#include "model/checkpoint.h"
#include "model/gguf.h"
#include "model/tokenizer.h"
#include "tests/fuzz/memfd.h"

namespace {

namespace gguf = joule::model::gguf;

void Touch(const unsigned char* p, uint64_t n) {
  if (n == 0) return;
  volatile unsigned char sink = p[0] ^ p[n - 1];
  (void)sink;
}

void ReadMetadata(const gguf::File& f) {
  for (const char* key :
       {"general.architecture", "general.alignment", "llama.block_count",
        "llama.rope.freq_base", "tokenizer.ggml.tokens",
        "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
        "tokenizer.ggml.add_bos_token"}) {
    (void)f.GetInt(key);
    (void)f.GetFloat(key);
    (void)f.GetBool(key);
    (void)f.GetString(key);
    (void)f.GetStrings(key);
    (void)f.GetFloats(key);
    (void)f.GetInts(key);
  }
}

void TouchRows(const joule::model::Matrix& m) {
  if (m.rows <= 0 || m.cols <= 0) __builtin_trap();
  std::vector<float> row(m.cols);
  m.DequantizeRow(0, row.data());
  m.DequantizeRow(m.rows - 1, row.data());
}

void LoadModel(const uint8_t* data, size_t size) {
  joule::fuzz::MemFile file(data, size);
  auto ckpt = joule::model::Checkpoint::Open(file.path());
  if (!ckpt.ok()) return;
  const joule::model::Config& c = (*ckpt)->config();
  TouchRows((*ckpt)->token_embedding());
  TouchRows((*ckpt)->classifier());
  for (int l = 0; l < c.n_layers; ++l) {
    const joule::model::LayerWeights& w = (*ckpt)->layer(l);
    volatile float sink = w.rms_att[c.dim - 1] + w.rms_ffn[c.dim - 1];
    (void)sink;
    for (const auto* m : {&w.wq, &w.wk, &w.wv, &w.wo, &w.w1, &w.w2, &w.w3}) {
      TouchRows(*m);
    }
  }
  if ((*ckpt)->gguf() != nullptr) {
    auto tok =
        joule::model::Tokenizer::FromGguf(*(*ckpt)->gguf(), c.vocab_size);
    if (tok.ok()) (void)(*tok)->Encode("Once upon a time", true);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = gguf::File::Parse(data, size);
  if (f.ok()) {
    for (const gguf::TensorInfo& t : (*f)->tensors()) Touch(t.data, t.bytes);
    ReadMetadata(**f);
  }
  LoadModel(data, size);
  return 0;
}
