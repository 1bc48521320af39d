#include "device/cpu/packed_weights.h"

#include <sys/mman.h>

#include <cassert>
#include <cstdlib>
#include <cstring>
#include <new>

namespace joule::cpu {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
}  // namespace

WeightBuffer::WeightBuffer(size_t bytes) {
  if (bytes == 0) return;
  const size_t align = bytes >= kHugePage ? kHugePage : 64;
  const size_t rounded = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, rounded);
  if (p == nullptr) throw std::bad_alloc();
  // Advisory: without THP the buffer still works, on small pages.
  if (align == kHugePage) madvise(p, rounded, MADV_HUGEPAGE);
  p_.reset(p);
}

void WeightBuffer::Free::operator()(void* p) const { std::free(p); }

PackedQ8::PackedQ8(const int8_t* q, const float* scale, int rows, int cols,
                   int gs, int row_block, bool bias) {
  w_.rows = rows;
  w_.cols = cols;
  w_.gs = gs;
  w_.row_block = row_block;
  if (row_block == 1 && !bias) {
    w_.q = q;
    w_.scale = scale;
    return;
  }
  Pack(scale, bias, [&](int r, int k) { return q[int64_t{r} * cols + k]; });
}

std::unique_ptr<PackedQ8> PackedQ8::FromQ4_0(const uint8_t* q4,
                                             const float* scale, int rows,
                                             int cols, int row_block,
                                             bool bias) {
  std::unique_ptr<PackedQ8> p(new PackedQ8());
  p->w_.rows = rows;
  p->w_.cols = cols;
  p->w_.gs = 32;
  p->w_.row_block = row_block;
  p->w_.nibbles = true;
  p->Pack(scale, bias, [&](int r, int k) {
    const uint8_t b = q4[(int64_t{r} * cols + k) / 32 * 16 + k % 16];
    return static_cast<int8_t>((k % 32 < 16 ? b & 0x0f : b >> 4) - 8);
  });
  return p;
}

template <typename Weight>
void PackedQ8::Pack(const float* scale, bool bias, Weight weight) {
  const int rows = w_.rows, cols = w_.cols, gs = w_.gs, RB = w_.row_block;
  const int groups = cols / gs;
  const int blocks = w_.blocks();
  const size_t block_bytes = w_.block_bytes();
  q_ = WeightBuffer(block_bytes * blocks);
  scale_ = WeightBuffer(sizeof(float) * size_t(blocks) * groups * RB);
  auto* pq = static_cast<uint8_t*>(q_.data());
  auto* ps = static_cast<float*>(scale_.data());
  int32_t* pb = nullptr;
  if (bias) {
    bias_ = WeightBuffer(sizeof(int32_t) * size_t(blocks) * groups * RB);
    pb = static_cast<int32_t*>(bias_.data());
  }
  // Padding rows of the last block: zero weights (nibbles 8) and scales,
  // so they add nothing and are never stored.
  std::memset(pq, w_.nibbles ? 0x88 : 0, block_bytes * blocks);
  std::memset(ps, 0, sizeof(float) * size_t(blocks) * groups * RB);
  if (pb != nullptr)
    std::memset(pb, 0, sizeof(int32_t) * size_t(blocks) * groups * RB);
  // Interleaving works on 4-byte column quads (pairs of them for
  // nibbles); the engine only asks for it when the group size allows
  // (else row_block 1 and no bias: the checkpoint's bytes, above).
  assert(gs % (w_.nibbles ? 8 : 4) == 0);
  const size_t group_bytes = block_bytes / groups;
  for (int r = 0; r < rows; ++r) {
    const int blk = r / RB, lane = r % RB;
    uint8_t* dst = pq + blk * block_bytes;
    for (int g = 0; g < groups; ++g) {
      const size_t cell = (size_t(blk) * groups + g) * RB + lane;
      ps[cell] = scale[int64_t{r} * groups + g];
      int32_t sum = 0;
      for (int kk = 0; kk < gs; ++kk) {
        const int8_t v = weight(r, g * gs + kk);
        sum += v;
        const int step = w_.nibbles ? kk / 8 : kk / 4;
        uint8_t& b =
            dst[g * group_bytes + (size_t(step) * RB + lane) * 4 + kk % 4];
        if (!w_.nibbles) {
          b = static_cast<uint8_t>(v);
        } else if (kk % 8 < 4) {
          b = (b & 0xf0) | uint8_t(v + 8);
        } else {
          b = (b & 0x0f) | uint8_t((v + 8) << 4);
        }
      }
      if (pb != nullptr) pb[cell] = -128 * sum;
    }
  }
  w_.q = reinterpret_cast<const int8_t*>(pq);
  w_.scale = ps;
  w_.bias = pb;
}

PackedF32::PackedF32(const float* w, int rows, int cols, int row_block) {
  w_.rows = rows;
  w_.cols = cols;
  w_.row_block = row_block;
  if (row_block == 1) {
    w_.w = w;
    return;
  }
  const size_t block_floats = size_t(cols) * row_block;
  const size_t floats = block_floats * w_.blocks();
  buf_ = WeightBuffer(sizeof(float) * floats);
  auto* p = static_cast<float*>(buf_.data());
  std::memset(p, 0, sizeof(float) * floats);
  for (int r = 0; r < rows; ++r) {
    float* dst = p + (r / row_block) * block_floats + r % row_block;
    const float* src = w + int64_t{r} * cols;
    for (int c = 0; c < cols; ++c) dst[size_t(c) * row_block] = src[c];
  }
  w_.w = p;
}

}  // namespace joule::cpu
