#include "scheduler/request_queue.h"

namespace joule::scheduler {

void RequestQueue::Push(std::shared_ptr<Sequence> seq) {
  pending_tokens_ += seq->uncached();
  items_.insert(Item{std::move(seq)});
}

std::shared_ptr<Sequence> RequestQueue::PopFront() {
  auto it = items_.begin();
  std::shared_ptr<Sequence> seq = it->seq;
  items_.erase(it);
  pending_tokens_ -= seq->uncached();
  return seq;
}

std::vector<std::shared_ptr<Sequence>> RequestQueue::RemoveIf(
    const std::function<bool(const Sequence&)>& pred) {
  std::vector<std::shared_ptr<Sequence>> out;
  for (auto it = items_.begin(); it != items_.end();) {
    if (pred(*it->seq)) {
      pending_tokens_ -= it->seq->uncached();
      out.push_back(it->seq);
      it = items_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

}  // namespace joule::scheduler
