#ifndef JOULE_DEVICE_CPU_KERNELS_ATTENTION_H_
#define JOULE_DEVICE_CPU_KERNELS_ATTENTION_H_

// One query head's attention, written once and instantiated in each ISA's
// translation unit with that ISA's dot and axpy (so it compiles with the
// unit's -m flags).

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace joule::cpu {

template <float (*DotF)(const float*, const float*, int),
          void (*AxpyF)(float, const float*, float*, int)>
void AttendWith(const float* q, const float* keys, const float* values,
                int stride, int n, int hs, float scale, float* scores,
                float* out) {
  float max_val = -INFINITY;
  for (int t = 0; t < n; ++t) {
    scores[t] = DotF(q, keys + int64_t{t} * stride, hs) * scale;
    max_val = std::max(max_val, scores[t]);
  }
  float sum = 0.0f;
  for (int t = 0; t < n; ++t) {
    scores[t] = expf(scores[t] - max_val);  // libm, as the reference engine.
    sum += scores[t];
  }
  const float inv = 1.0f / sum;
  for (int i = 0; i < hs; ++i) out[i] = 0.0f;
  for (int t = 0; t < n; ++t)
    AxpyF(scores[t] * inv, values + int64_t{t} * stride, out, hs);
}

}  // namespace joule::cpu

#endif  // JOULE_DEVICE_CPU_KERNELS_ATTENTION_H_
