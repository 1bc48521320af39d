// The checkpoint loader on arbitrary file bytes: Open either refuses the file
// with a status or every matrix it returns lies inside the mapping (the
// first and last row of each are read, so ASan sees any overrun).
#include <cstdint>
#include <vector>

#include "model/checkpoint.h"
#include "tests/fuzz/memfd.h"

namespace {

void TouchRows(const joule::model::Matrix& m) {
  if (m.rows <= 0 || m.cols <= 0) __builtin_trap();
  std::vector<float> row(m.cols);
  m.DequantizeRow(0, row.data());
  m.DequantizeRow(m.rows - 1, row.data());
}

void TouchVector(const float* v, int n) {
  volatile float sink = v[0] + v[n - 1];
  (void)sink;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  joule::fuzz::MemFile file(data, size);
  auto ckpt = joule::model::Checkpoint::Open(file.path());
  if (!ckpt.ok()) return 0;
  const joule::model::Config& c = (*ckpt)->config();
  TouchRows((*ckpt)->token_embedding());
  TouchRows((*ckpt)->classifier());
  TouchVector((*ckpt)->rms_final(), c.dim);
  for (int l = 0; l < c.n_layers; ++l) {
    const joule::model::LayerWeights& w = (*ckpt)->layer(l);
    TouchVector(w.rms_att, c.dim);
    TouchVector(w.rms_ffn, c.dim);
    for (const auto* m : {&w.wq, &w.wk, &w.wv, &w.wo, &w.w1, &w.w2, &w.w3}) {
      TouchRows(*m);
    }
  }
  return 0;
}
