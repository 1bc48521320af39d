#ifndef JOULE_DEVICE_CPU_KERNELS_H_
#define JOULE_DEVICE_CPU_KERNELS_H_

#include <cstdint>
#include <string>

namespace joule::cpu {

// The fast engine's hot loops, one implementation per instruction set,
// chosen at run time (the same binary runs with AVX-512 VNNI, AVX2 or
// neither).
struct Kernels {
  std::string isa;
  // Quantizes activations for q8_gemm: int8 with per-group scales, stored
  // as x + 128 (uint8) when `unsigned_activations` (VNNI's u8 x s8 dot).
  bool unsigned_activations = false;
  void (*quantize)(const float* x, int n, int gs, int8_t* q, float* scale);
  // out[b * out_stride + r] = sum over groups g of row r:
  //   (int32 dot of w[r, g] and x[b, g]) * w_scale[r, g] * x_scale[b, g]
  // for r in [r0, r1), b in [0, batch). Weights are row-major [rows x cols]
  // int8 with one scale per `gs` values; x is [batch x cols] int8 with
  // per-group scales. The int32 dots are exact.
  // `w_sum` holds each group's sum of weights (for the unsigned form).
  void (*q8_gemm)(const int8_t* w, const float* w_scale, const int32_t* w_sum,
                  int cols, int gs, const int8_t* x, const float* x_scale,
                  int batch, float* out, int out_stride, int r0, int r1);
  // out[b * out_stride + r] = dot(w[r], x[b]) in fp32.
  void (*f32_gemm)(const float* w, int cols, const float* x, int batch,
                   float* out, int out_stride, int r0, int r1);
  float (*dot)(const float* a, const float* b, int n);
  // y += a * x
  void (*axpy)(float a, const float* x, float* y, int n);
  // One query head over `n` cached positions: out = softmax(q . k_t * scale)
  // weighted sum of v_t; keys/values of position t at keys + t * stride.
  // `scores` has room for n floats. libm's expf, as the reference.
  void (*attend)(const float* q, const float* keys, const float* values,
                 int stride, int n, int head_size, float scale, float* scores,
                 float* out);
  // h[i] = silu(h[i]) * g[i], with a polynomial exp (about 2 ulp): for the
  // int8 path, whose activations are quantized anyway.
  void (*swiglu)(float* h, const float* g, int n);
};

// The best kernels this CPU supports (or the one `isa` names: "avx512vnni",
// "avx2", "generic"; unsupported names fall back).
const Kernels& SelectKernels(const std::string& isa = "");

// Symmetric int8 quantization of `n` values in groups of `gs` (Q8_0, as
// llama2.c's runq): scale = max|x| / 127.
void QuantizeGroups(const float* x, int n, int gs, int8_t* q, float* scale);

// Implementations, for tests.
const Kernels& GenericKernels();
const Kernels* Avx2Kernels();        // nullptr if this CPU lacks AVX2+FMA.
const Kernels* Avx512VnniKernels();  // nullptr if this CPU lacks it.

}  // namespace joule::cpu

#endif  // JOULE_DEVICE_CPU_KERNELS_H_
