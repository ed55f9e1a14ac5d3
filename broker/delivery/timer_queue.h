// TimerQueue holds the deadlines of the delivery module in one binary
// min-heap: ack waits, redelivery backoffs and delays alike. Time is whatever
// the owner passes in (ms of the event loop's clock); nothing here reads a
// clock.
//
// Cancelling is lazy. The owner keeps, beside each of its slots, the seq of
// the one timer that is current for it; a timer whose seq no longer matches is
// stale and is skipped when it reaches the top (see Deliveries). Rescheduling
// is a new Push. Compact() sweeps stale timers in one O(n) pass, so the heap
// stays within a constant factor of the live timers without a per-cancel
// O(log n) removal or a back-pointer per entry.
//
// Timers with equal `when` come out in the order they were pushed (seq breaks
// ties), so messages that time out together are redelivered in order.
//
// Not thread-safe: owned by the routing thread with its Deliveries.
#ifndef SIFT_BROKER_DELIVERY_TIMER_QUEUE_H_
#define SIFT_BROKER_DELIVERY_TIMER_QUEUE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sift::delivery {

class TimerQueue {
 public:
  struct Timer {
    int64_t when;   // fires at this time (ms)
    uint64_t seq;   // unique per Push, never 0; names the timer
    uint32_t slot;  // the owner's index of what the timer is for
  };

  TimerQueue() = default;
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Adds a timer and returns its seq. O(log n); O(1) when `when` is not
  // earlier than its parent's (the usual case: now + a constant ack wait).
  uint64_t Push(int64_t when, uint32_t slot) {
    const uint64_t seq = next_seq_++;
    heap_.push_back(Timer{when, seq, slot});
    std::push_heap(heap_.begin(), heap_.end(), Later);
    return seq;
  }

  bool empty() const { return heap_.empty(); }
  // Timers held, stale ones included.
  size_t size() const { return heap_.size(); }

  // The earliest timer. REQUIRES: !empty().
  const Timer& top() const { return heap_.front(); }
  // Removes top(). REQUIRES: !empty().
  void Pop() {
    std::pop_heap(heap_.begin(), heap_.end(), Later);
    heap_.pop_back();
  }

  // Every timer, stale ones included, earliest first (equal `when` in push
  // order). O(n log n) and a copy: for rare walks, not the hot path.
  std::vector<Timer> Sorted() const {
    std::vector<Timer> out = heap_;
    std::sort(out.begin(), out.end(),
              [](const Timer& a, const Timer& b) { return Later(b, a); });
    return out;
  }

  // Drops every timer t with !is_live(t), in O(size()).
  template <typename IsLive>
  void Compact(IsLive is_live) {
    heap_.erase(std::remove_if(heap_.begin(), heap_.end(),
                               [&](const Timer& t) { return !is_live(t); }),
                heap_.end());
    std::make_heap(heap_.begin(), heap_.end(), Later);
  }

 private:
  // std::*_heap build a max-heap; "later" as less-than makes a min-heap.
  static bool Later(const Timer& a, const Timer& b) {
    return a.when != b.when ? a.when > b.when : a.seq > b.seq;
  }

  std::vector<Timer> heap_;
  uint64_t next_seq_ = 1;
};

}  // namespace sift::delivery

#endif  // SIFT_BROKER_DELIVERY_TIMER_QUEUE_H_
