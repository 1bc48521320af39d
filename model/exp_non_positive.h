#ifndef JOULE_MODEL_EXP_NON_POSITIVE_H_
#define JOULE_MODEL_EXP_NON_POSITIVE_H_

#include <cstdint>
#include <cstring>

namespace joule::model {

// exp(-|x|), to about 2 ulp, for x <= 0 (the callers' range): the sampler's
// softmax and the log-probabilities' sum. Plain float and integer
// arithmetic that GCC vectorizes at the baseline ISA when inlined into a
// loop: unlike libm's expf, which picks an implementation by CPU, every
// x86-64 machine computes the same bits, so a seed replays the same tokens
// everywhere (callers build with -ffp-contract=off). Inputs below -87
// (-inf and NaN included) are clamped there, giving about 1e-38 instead of
// 0: nothing against a maximum of 1.
inline float ExpNonPositive(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;     // 1.5 * 2^23: rounds to integer.
  constexpr uint32_t kMag87 = 0x42AE0000u;  // 87.0f
  // The clamp works on the bits: a float compare would stop GCC from
  // vectorizing without fast-math.
  uint32_t b;
  std::memcpy(&b, &x, sizeof(b));
  uint32_t mag = b & 0x7FFFFFFFu;
  mag = mag < kMag87 ? mag : kMag87;
  const uint32_t neg = mag | 0x80000000u;
  std::memcpy(&x, &neg, sizeof(x));
  const float k = (x * kLog2e + kRound) - kRound;
  const float r = x - k * kLn2Hi - k * kLn2Lo;  // |r| <= ln2 / 2.
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

}  // namespace joule::model

#endif  // JOULE_MODEL_EXP_NON_POSITIVE_H_
