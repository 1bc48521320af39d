#ifndef JOULE_SCHEDULER_REQUEST_QUEUE_H_
#define JOULE_SCHEDULER_REQUEST_QUEUE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <vector>

#include "scheduler/sequence.h"

namespace joule::scheduler {

// Sequences waiting for a device, earliest rank_time first. Priority moves a
// request's rank_time earlier by a fixed time per level, so a low-priority
// request that has waited long enough still overtakes newer high-priority
// ones: no starvation. Not thread-safe: the scheduler's lock guards it.
class RequestQueue {
 public:
  void Push(std::shared_ptr<Sequence> seq);
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  // Tokens the waiting sequences still need to compute.
  int64_t pending_tokens() const { return pending_tokens_; }
  const std::shared_ptr<Sequence>& front() const { return items_.begin()->seq; }
  std::shared_ptr<Sequence> PopFront();
  // Removes and returns every sequence for which `pred` is true.
  std::vector<std::shared_ptr<Sequence>> RemoveIf(
      const std::function<bool(const Sequence&)>& pred);

 private:
  struct Item {
    std::shared_ptr<Sequence> seq;
    bool operator<(const Item& o) const {
      if (seq->rank_time != o.seq->rank_time) {
        return seq->rank_time < o.seq->rank_time;
      }
      return seq->order < o.seq->order;
    }
  };
  std::set<Item> items_;
  int64_t pending_tokens_ = 0;
};

}  // namespace joule::scheduler

#endif  // JOULE_SCHEDULER_REQUEST_QUEUE_H_
