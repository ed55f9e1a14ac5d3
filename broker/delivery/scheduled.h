// ScheduledMessages holds publishes that asked to be routed later (a PUB
// with delay_ms or deliver_at_ms: Celery's countdown and eta, RabbitMQ's
// delayed exchange) until they are due, in due order (equal times in
// arrival order). In memory only: a broker restart loses them.
//
// Time is ms of the caller's monotonic clock; nothing here reads a clock.
// Bounded in messages and bytes.
//
// Thread-safety: not thread-safe; owned by the routing thread.
#ifndef SIFT_BROKER_DELIVERY_SCHEDULED_H_
#define SIFT_BROKER_DELIVERY_SCHEDULED_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "broker/delivery/deliveries.h"
#include "broker/delivery/timer_queue.h"

namespace sift::delivery {

class ScheduledMessages {
 public:
  ScheduledMessages(size_t max_messages, uint64_t max_bytes)
      : max_messages_(max_messages), max_bytes_(max_bytes) {}

  // Holds `message` until `due`; messages due at the same time come out in
  // the order they were added. Errors: ResourceExhausted (not held) past
  // max_messages or max_bytes, unless `restored` (a message kept on disk
  // before a restart: its publish was confirmed, so it is held past the
  // bounds, which then refuse new ones until fewer are held).
  absl::Status Add(int64_t due, MessageRef message, bool restored = false);
  // Whether more than the bounds are held (after restored messages).
  bool over_bounds() const {
    return size_ > max_messages_ || bytes_ > max_bytes_;
  }
  // Appends every message due at `now` to *out, earliest first.
  void TakeDue(int64_t now, std::vector<MessageRef>* out);
  // Calls f(due, message) for every message held, in the order TakeDue
  // would hand them out. O(n log n): for rare walks (a stream added while
  // messages wait), not per publish. `f` must not add or take messages.
  template <typename F>
  void ForEach(F f) const {
    for (const TimerQueue::Timer& t : timers_.Sorted()) {
      f(t.when, slots_[t.slot]);
    }
  }
  // When the next message is due, or INT64_MAX.
  int64_t NextDue() const {
    return timers_.empty() ? INT64_MAX : timers_.top().when;
  }

  size_t size() const { return size_; }
  uint64_t bytes() const { return bytes_; }

 private:
  static uint64_t Cost(const StoredMessage& m) {
    return m.topic().size() + m.reply_to().size() + m.headers().size() +
           m.payload().size();
  }

  const size_t max_messages_;
  const uint64_t max_bytes_;
  TimerQueue timers_;
  std::vector<MessageRef> slots_;  // by timer slot; null when free
  std::vector<uint32_t> free_slots_;
  size_t size_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace sift::delivery

#endif  // SIFT_BROKER_DELIVERY_SCHEDULED_H_
