#ifndef JOULE_SCHEDULER_KV_BLOCK_MANAGER_H_
#define JOULE_SCHEDULER_KV_BLOCK_MANAGER_H_

#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "device/device.h"

namespace joule::scheduler {

// Paged accounting of one device's KV cache: capacity is cut into blocks of
// `block_size` positions and a sequence holds ceil(length / block_size)
// blocks, reserved as it grows. Rounding down the capacity keeps the
// scheduler within what the device can hold.
class KvBlockManager {
 public:
  KvBlockManager(int64_t capacity_tokens, int block_size);

  static int64_t BlocksFor(int64_t positions, int block_size) {
    return (positions + block_size - 1) / block_size;
  }
  // Whether `seq` could hold `positions` positions in all.
  bool CanHold(device::SequenceId seq, int64_t positions) const;
  // Reserves blocks so `seq` holds `positions` positions; false (and no
  // change) if they are not free.
  bool Grow(device::SequenceId seq, int64_t positions);
  void Free(device::SequenceId seq);

  int block_size() const { return block_size_; }
  int64_t total_blocks() const { return total_blocks_; }
  int64_t used_blocks() const { return used_blocks_; }
  int64_t free_blocks() const { return total_blocks_ - used_blocks_; }
  double usage() const {
    return total_blocks_ == 0 ? 0.0 : double(used_blocks_) / total_blocks_;
  }

 private:
  int block_size_;
  int64_t total_blocks_;
  int64_t used_blocks_ = 0;
  absl::flat_hash_map<device::SequenceId, int64_t> blocks_;
};

}  // namespace joule::scheduler

#endif  // JOULE_SCHEDULER_KV_BLOCK_MANAGER_H_
