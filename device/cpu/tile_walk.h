#ifndef JOULE_DEVICE_CPU_TILE_WALK_H_
#define JOULE_DEVICE_CPU_TILE_WALK_H_

// How the packed GEMM kernels of each ISA cover a matrix with register
// tiles of up to kMaxRB row blocks by kMaxNT sequences. Header-only, for
// the per-ISA translation units.
#include <algorithm>
#include <array>
#include <cstddef>
#include <utility>

#include "device/cpu/kernels.h"

namespace joule::cpu {

// Tile<RB, NT>::Run for every RB <= kMaxRB and NT <= kMaxNT, by
// [RB - 1][NT - 1]: batches of any size get a tile compiled for them.
template <template <int, int> class Tile, int kMaxNT, int RB, int... NT>
constexpr auto TileRow(std::integer_sequence<int, NT...>) {
  return std::array{&Tile<RB, NT + 1>::Run...};
}
template <template <int, int> class Tile, int kMaxNT, int... RB>
constexpr auto TileTable(std::integer_sequence<int, RB...>) {
  return std::array{TileRow<Tile, kMaxNT, RB + 1>(
      std::make_integer_sequence<int, kMaxNT>())...};
}
template <template <int, int> class Tile, int kMaxRB, int kMaxNT>
constexpr auto MakeTileTable() {
  return TileTable<Tile, kMaxNT>(std::make_integer_sequence<int, kMaxRB>());
}

// The walk over blocks [block0, block1) of a matrix of `blocks`: a group
// of kMaxRB blocks is finished for the whole batch, tile by tile of up to
// kMaxNT sequences, before the next, so its weights stay in L1/L2 while
// every tile uses them and come from memory once per step. tile(blk, rb,
// b, nt, next) runs rb blocks from blk on sequences [b, b + nt); the first
// tile of a group gets the next group's first block (else -1) and pulls it
// into L2, line for line as it reads its own, so memory streams while
// tiles compute instead of in between (AVX-512, int8, 110M shape, 16
// sequences: 1440 -> 1710 tok/s; one sequence: 292 -> 354 tok/s, beyond
// what the hardware prefetchers alone sustained; into L1 it gained half as
// much). Past block1 too: the thread pool hands a thread the chunk after
// its last one unless another thread stole it.
template <int kMaxRB, int kMaxNT, typename Tile>
inline void ForEachTile(int blocks, int block0, int block1, int batch,
                        Tile tile) {
  for (int blk = block0; blk < block1; blk += kMaxRB) {
    const int rb = std::min(kMaxRB, block1 - blk);
    const int next = blk + kMaxRB < blocks ? blk + kMaxRB : -1;
    for (int b = 0; b < batch; b += kMaxNT)
      tile(blk, rb, b, std::min(kMaxNT, batch - b), b == 0 ? next : -1);
  }
}

// Kernels::q8_gemm over a table of tiles (MakeTileTable), each run as
// Run(w, blk, x, xs, out, out_stride, next_block_weights). X is the
// activation type the tiles take (uint8 when stored as x + 128).
template <int kMaxRB, int kMaxNT, typename Tiles, typename X>
inline void TiledQ8Gemm(const Tiles& tiles, const Q8Weights& w, const X* x,
                        const float* xs, int batch, float* out, int out_stride,
                        int block0, int block1) {
  const int groups = w.cols / w.gs;
  const size_t block_bytes = w.block_bytes();
  ForEachTile<kMaxRB, kMaxNT>(
      w.blocks(), block0, block1, batch,
      [&](int blk, int rb, int b, int nt, int next) {
        tiles[rb - 1][nt - 1](w, blk, x + size_t(b) * w.cols,
                              xs + size_t(b) * groups,
                              out + size_t(b) * out_stride, out_stride,
                              next < 0 ? nullptr : w.q + next * block_bytes);
      });
}

// Kernels::f32_gemm the same way; tiles run as Run(w, blk, x, out,
// out_stride, next_block_weights).
template <int kMaxRB, int kMaxNT, typename Tiles>
inline void TiledF32Gemm(const Tiles& tiles, const F32Weights& w,
                         const float* x, int batch, float* out, int out_stride,
                         int block0, int block1) {
  const size_t block_floats = size_t(w.cols) * w.row_block;
  ForEachTile<kMaxRB, kMaxNT>(
      w.blocks(), block0, block1, batch,
      [&](int blk, int rb, int b, int nt, int next) {
        tiles[rb - 1][nt - 1](w, blk, x + size_t(b) * w.cols,
                              out + size_t(b) * out_stride, out_stride,
                              next < 0 ? nullptr : w.w + next * block_floats);
      });
}

}  // namespace joule::cpu

#endif  // JOULE_DEVICE_CPU_TILE_WALK_H_
