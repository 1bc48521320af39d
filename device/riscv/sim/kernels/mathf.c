#include "mathf.h"

float joule_expf(float x) {
  if (x != x) return x;
  if (x < -87.3f) return 0.0f;
  if (x > 88.7f) return __builtin_inff();
  const float t = x * 1.44269504f;
  const float n = (float)(int)(t + (t >= 0 ? 0.5f : -0.5f));
  /* ln 2 in two parts: the first exact in float, so n * hi is exact. */
  const float r = (x - n * 0.693145752f) - n * 1.42860677e-6f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  /* 2^n, n in [-126, 128]: split so each factor is a normal float. */
  const int e = (int)n;
  const int e1 = e / 2, e2 = e - e1;
  union {
    unsigned u;
    float f;
  } a = {(unsigned)(e1 + 127) << 23}, b = {(unsigned)(e2 + 127) << 23};
  return p * a.f * b.f;
}
