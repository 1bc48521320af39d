#ifndef JOULE_MODEL_QUANTIZE_H_
#define JOULE_MODEL_QUANTIZE_H_

#include <cstdint>

#include "model/config.h"

namespace joule::model {

// The largest power of two <= 64 that divides both dim and hidden_dim, so no
// quantization group straddles two rows of any weight matrix. (llama2.c's
// exporter checks only dim, which fails for stories260K's hidden_dim 172.)
int ChooseGroupSize(const Config& config);

// Symmetric int8 with one fp32 scale per `group_size` values, as llama2.c's
// version 2 export: scale = max|x| / 127, q = round(x / scale).
void QuantizeQ8_0(const float* x, int64_t n, int group_size, int8_t* q,
                  float* scales);

}  // namespace joule::model

#endif  // JOULE_MODEL_QUANTIZE_H_
