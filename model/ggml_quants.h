#ifndef JOULE_MODEL_GGML_QUANTS_H_
#define JOULE_MODEL_GGML_QUANTS_H_

// The ggml tensor encodings Joule reads from GGUF files, after ggml's
// ggml-quants.c reference code: IEEE half and bfloat16 scalars, and the
// Q8_0 and Q4_0 blocks of 32 values with one fp16 scale each.
//   Q8_0: fp16 d, then 32 int8 q: x = q * d.
//   Q4_0: fp16 d, then 16 bytes: byte j holds value j in its low nibble and
//         value 16 + j in its high nibble: x = (nibble - 8) * d.

#include <cstdint>
#include <string>

namespace joule::model::ggml {

inline constexpr int kBlockValues = 32;
inline constexpr int kQ8_0BlockBytes = 34;
inline constexpr int kQ4_0BlockBytes = 18;

float HalfToFloat(uint16_t h);
// Round to nearest even; overflow goes to infinity.
uint16_t FloatToHalf(float f);
float Bf16ToFloat(uint16_t h);
uint16_t FloatToBf16(float f);

// `n` must be a multiple of kBlockValues for the block types. Quantizers
// append to `out`; dequantizers write `n` floats.
void QuantizeQ8_0(const float* x, int64_t n, std::string* out);
void QuantizeQ4_0(const float* x, int64_t n, std::string* out);
void DequantizeQ8_0(const unsigned char* blocks, int64_t n, float* out);
void DequantizeQ4_0(const unsigned char* blocks, int64_t n, float* out);
void DequantizeF16(const unsigned char* data, int64_t n, float* out);
void DequantizeBf16(const unsigned char* data, int64_t n, float* out);
// Q4_0's nibbles without their scales (16 bytes per 32 values, as above)
// to the int8 values nibble - 8: exact, for Q8_0's kernels and lookups.
void WidenQ4_0(const uint8_t* nibbles, int64_t n, int8_t* out);

}  // namespace joule::model::ggml

#endif  // JOULE_MODEL_GGML_QUANTS_H_
