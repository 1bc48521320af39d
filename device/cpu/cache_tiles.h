#ifndef JOULE_DEVICE_CPU_CACHE_TILES_H_
#define JOULE_DEVICE_CPU_CACHE_TILES_H_

#include <cstdint>
#include <type_traits>

#include "device/cpu/kernels.h"

namespace joule::cpu {

// One head's KV cache in kKeyTile-position tiles, for each entry type E
// the kernels read (see Kernels::attend and attend_i8): fp32 and fp16
// tiles are bare entries, so their values are plain [position][head_size]
// rows; int8 tiles lead with one fp32 scale per position. Shared by the
// per-ISA kernels so that they walk the same layout.
template <typename E>
struct CacheTile {
  static constexpr bool kScaled = std::is_same_v<E, int8_t>;
  static constexpr int kHeaderBytes = kScaled ? 4 * kKeyTile : 0;
  static constexpr int64_t Bytes(int hs) {
    return kHeaderBytes + int64_t{hs} * kKeyTile * int64_t{sizeof(E)};
  }
  // Tile `i` of the head whose first tile is at `head`.
  static const char* At(const E* head, int hs, int64_t i) {
    return reinterpret_cast<const char*>(head) + i * Bytes(hs);
  }
  static const E* Entries(const char* tile) {
    return reinterpret_cast<const E*>(tile + kHeaderBytes);
  }
  // Starts loading tile `i` of the head at `head` (if any) into L1.
  static void Prefetch(const E* head, int hs, int64_t i) {
    if (head == nullptr) return;
    const char* tile = At(head, hs, i);
    for (int64_t b = 0; b < Bytes(hs); b += 64)
      __builtin_prefetch(tile + b, 0, 3);
  }
  // The dequantization scale of the tile's position `slot` (1 unscaled).
  static float Scale(const char* tile, int slot) {
    if constexpr (kScaled) {
      return reinterpret_cast<const float*>(tile)[slot];
    } else {
      return 1.0f;
    }
  }
};

static_assert(CacheTile<int8_t>::Bytes(64) == 64 * 16 + 64);

// Writes one position's key and value of one head into the int8 tiles
// whose first ones are at `keys` and `values`. quantize(x, n, q, scale) is
// the ISA's symmetric int8 of n values under one scale (QuantizeGroups'
// rounding); head_size <= kMaxI8HeadSize.
template <typename Quantize>
inline void StoreI8Position(const float* k, const float* v, int hs, int pos,
                            int8_t* keys, int8_t* values, Quantize quantize) {
  using Tile = CacheTile<int8_t>;
  const int64_t at = pos / kKeyTile * Tile::Bytes(hs);
  const int slot = pos % kKeyTile;
  int8_t q[kMaxI8HeadSize];
  quantize(k, hs, q, reinterpret_cast<float*>(keys + at) + slot);
  // Keys are dimension-major: the position's entries are kKeyTile apart.
  int8_t* kt = keys + at + Tile::kHeaderBytes + slot;
  for (int d = 0; d < hs; ++d) kt[d * kKeyTile] = q[d];
  quantize(v, hs, values + at + Tile::kHeaderBytes + int64_t{slot} * hs,
           reinterpret_cast<float*>(values + at) + slot);
}

}  // namespace joule::cpu

#endif  // JOULE_DEVICE_CPU_CACHE_TILES_H_
