#include "model/quantize.h"

#include <cmath>

namespace joule::model {

int ChooseGroupSize(const Config& config) {
  int gs = 64;
  while (gs > 1 && (config.dim % gs != 0 || config.hidden_dim % gs != 0)) {
    gs /= 2;
  }
  return gs;
}

void QuantizeQ8_0(const float* x, int64_t n, int group_size, int8_t* q,
                  float* scales) {
  for (int64_t g = 0; g < n / group_size; ++g) {
    const float* xg = x + g * group_size;
    float wmax = 0.0f;
    for (int i = 0; i < group_size; ++i)
      wmax = std::fmax(wmax, std::fabs(xg[i]));
    const float scale = wmax / 127.0f;
    scales[g] = scale;
    for (int i = 0; i < group_size; ++i) {
      // An all-zero group has scale 0; its values stay 0 instead of NaN.
      q[g * group_size + i] =
          scale == 0.0f ? 0 : static_cast<int8_t>(std::lround(xg[i] / scale));
    }
  }
}

}  // namespace joule::model
