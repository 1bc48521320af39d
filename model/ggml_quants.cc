#include "model/ggml_quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace joule::model::ggml {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t LoadU16(const unsigned char* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

void StoreU16(uint16_t v, std::string* out) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>(v >> 8));
}

}  // namespace

float HalfToFloat(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t e = (h >> 10) & 0x1f;
  const uint32_t m = h & 0x3ff;
  if (e == 0) {  // Zero or subnormal: m * 2^-24.
    const float f = std::ldexp(static_cast<float>(m), -24);
    return sign ? -f : f;
  }
  if (e == 31) return FromBits(sign | 0x7f800000u | (m << 13));
  return FromBits(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t FloatToHalf(float f) {
  uint32_t x = Bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  x &= 0x7fffffff;
  if (x >= 0x7f800000) {  // Inf stays inf; NaN stays a (quiet) NaN.
    return sign | 0x7c00 | (x > 0x7f800000 ? 0x200 : 0);
  }
  if (x >= 0x477ff000) return sign | 0x7c00;  // Rounds past 65504.
  if (x < 0x38800000) {                       // Below 2^-14: subnormal.
    if (x < 0x33000000) return sign;          // At most 2^-25: zero.
    const int shift = 126 - static_cast<int>(x >> 23);
    const uint32_t m = (x & 0x7fffff) | 0x800000;
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return sign | static_cast<uint16_t>(r);
  }
  const uint32_t r = x + 0xfff + ((x >> 13) & 1) - 0x38000000;
  return sign | static_cast<uint16_t>(r >> 13);
}

float Bf16ToFloat(uint16_t h) { return FromBits(uint32_t{h} << 16); }

uint16_t FloatToBf16(float f) {
  const uint32_t u = Bits(f);
  if ((u & 0x7fffffff) > 0x7f800000) return (u >> 16) | 64;  // Quiet NaN.
  return static_cast<uint16_t>((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

void QuantizeQ8_0(const float* x, int64_t n, std::string* out) {
  for (int64_t b = 0; b < n; b += kBlockValues) {
    float amax = 0;
    for (int j = 0; j < kBlockValues; ++j) {
      amax = std::max(amax, std::fabs(x[b + j]));
    }
    const float d = amax / 127;
    const float id = d != 0 ? 1 / d : 0;
    StoreU16(FloatToHalf(d), out);
    for (int j = 0; j < kBlockValues; ++j) {
      out->push_back(
          static_cast<char>(static_cast<int8_t>(std::lround(x[b + j] * id))));
    }
  }
}

void QuantizeQ4_0(const float* x, int64_t n, std::string* out) {
  constexpr int kHalf = kBlockValues / 2;
  for (int64_t b = 0; b < n; b += kBlockValues) {
    // The value of largest magnitude, sign kept, maps to -8.
    float amax = 0, max = 0;
    for (int j = 0; j < kBlockValues; ++j) {
      if (std::fabs(x[b + j]) > amax) {
        amax = std::fabs(x[b + j]);
        max = x[b + j];
      }
    }
    const float d = max / -8;
    const float id = d != 0 ? 1 / d : 0;
    StoreU16(FloatToHalf(d), out);
    for (int j = 0; j < kHalf; ++j) {
      const int lo = std::min(15, static_cast<int>(x[b + j] * id + 8.5f));
      const int hi =
          std::min(15, static_cast<int>(x[b + kHalf + j] * id + 8.5f));
      out->push_back(static_cast<char>(lo | (hi << 4)));
    }
  }
}

void DequantizeQ8_0(const unsigned char* blocks, int64_t n, float* out) {
  for (int64_t b = 0; b < n / kBlockValues; ++b) {
    const unsigned char* p = blocks + b * kQ8_0BlockBytes;
    const float d = HalfToFloat(LoadU16(p));
    for (int j = 0; j < kBlockValues; ++j) {
      out[b * kBlockValues + j] = static_cast<int8_t>(p[2 + j]) * d;
    }
  }
}

void WidenQ4_0(const uint8_t* nibbles, int64_t n, int8_t* out) {
  constexpr int kHalf = kBlockValues / 2;
  for (int64_t b = 0; b < n / kBlockValues; ++b) {
    const uint8_t* p = nibbles + b * kHalf;
    int8_t* o = out + b * kBlockValues;
    for (int j = 0; j < kHalf; ++j) {
      o[j] = static_cast<int8_t>((p[j] & 0x0f) - 8);
      o[kHalf + j] = static_cast<int8_t>((p[j] >> 4) - 8);
    }
  }
}

void DequantizeQ4_0(const unsigned char* blocks, int64_t n, float* out) {
  int8_t q[kBlockValues];
  for (int64_t b = 0; b < n / kBlockValues; ++b) {
    const unsigned char* p = blocks + b * kQ4_0BlockBytes;
    const float d = HalfToFloat(LoadU16(p));
    WidenQ4_0(p + 2, kBlockValues, q);
    for (int j = 0; j < kBlockValues; ++j) out[b * kBlockValues + j] = q[j] * d;
  }
}

void DequantizeF16(const unsigned char* data, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = HalfToFloat(LoadU16(data + 2 * i));
}

void DequantizeBf16(const unsigned char* data, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = Bf16ToFloat(LoadU16(data + 2 * i));
}

}  // namespace joule::model::ggml
