#include "scheduler/kv_block_manager.h"

#include <algorithm>

namespace joule::scheduler {

KvBlockManager::KvBlockManager(int64_t capacity_tokens, int block_size)
    : block_size_(std::max(1, block_size)),
      total_blocks_(std::max<int64_t>(0, capacity_tokens) / block_size_) {}

bool KvBlockManager::CanHold(device::SequenceId seq, int64_t positions) const {
  auto it = blocks_.find(seq);
  const int64_t have = it == blocks_.end() ? 0 : it->second;
  return BlocksFor(positions, block_size_) - have <= free_blocks();
}

bool KvBlockManager::Grow(device::SequenceId seq, int64_t positions) {
  const int64_t need = BlocksFor(positions, block_size_);
  int64_t& have = blocks_[seq];
  if (need <= have) return true;
  if (need - have > free_blocks()) {
    if (have == 0) blocks_.erase(seq);
    return false;
  }
  used_blocks_ += need - have;
  have = need;
  return true;
}

void KvBlockManager::Free(device::SequenceId seq) {
  auto it = blocks_.find(seq);
  if (it == blocks_.end()) return;
  used_blocks_ -= it->second;
  blocks_.erase(it);
}

}  // namespace joule::scheduler
