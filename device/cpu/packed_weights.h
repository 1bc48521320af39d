#ifndef JOULE_DEVICE_CPU_PACKED_WEIGHTS_H_
#define JOULE_DEVICE_CPU_PACKED_WEIGHTS_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "device/cpu/kernels.h"

namespace joule::cpu {

// Memory for packed weights: 64-byte aligned (one vector load never spans
// two cache lines) and, when large, 2 MiB aligned with transparent huge
// pages requested, so streaming 100+ MB per step does not also walk the
// page tables for every 4 KiB.
class WeightBuffer {
 public:
  WeightBuffer() = default;
  explicit WeightBuffer(size_t bytes);
  void* data() const { return p_.get(); }

 private:
  struct Free {
    void operator()(void* p) const;
  };
  std::unique_ptr<void, Free> p_;
};

// A Q8_0 matrix in a kernel's layout (Q8Weights). Row-major layouts with
// signed activations point at the checkpoint's own bytes; any other layout
// is a copy owned here.
class PackedQ8 {
 public:
  // q: row-major [rows x cols] int8, scale: [rows x cols / gs].
  // `bias` adds the per-group -128 x sum terms unsigned activations need.
  // Copies (row_block > 1 or bias) need gs % 4 == 0.
  PackedQ8(const int8_t* q, const float* scale, int rows, int cols, int gs,
           int row_block, bool bias);
  // Q4_0 (ggml's layout without the scales: per group of 32 values 16
  // bytes, byte j holding value j in its low nibble and value 16 + j in its
  // high one, each as w + 8), always copied into the nibbles layout
  // (Q8Weights::nibbles). cols % 32 == 0.
  static std::unique_ptr<PackedQ8> FromQ4_0(const uint8_t* q4,
                                            const float* scale, int rows,
                                            int cols, int row_block, bool bias);
  PackedQ8(const PackedQ8&) = delete;
  PackedQ8& operator=(const PackedQ8&) = delete;

  const Q8Weights& weights() const { return w_; }

 private:
  PackedQ8() = default;
  // Copies weight(r, k) (signed) into the kernels' layout of w_'s shape.
  template <typename Weight>
  void Pack(const float* scale, bool bias, Weight weight);

  Q8Weights w_;
  WeightBuffer q_, scale_, bias_;
};

// An fp32 matrix in a kernel's layout (F32Weights): row-major (row_block
// 1) points at the checkpoint's own floats, any other layout is a copy
// owned here, its last block padded with zero rows.
class PackedF32 {
 public:
  PackedF32(const float* w, int rows, int cols, int row_block);
  PackedF32(const PackedF32&) = delete;
  PackedF32& operator=(const PackedF32&) = delete;

  const F32Weights& weights() const { return w_; }

 private:
  F32Weights w_;
  WeightBuffer buf_;
};

}  // namespace joule::cpu

#endif  // JOULE_DEVICE_CPU_PACKED_WEIGHTS_H_
