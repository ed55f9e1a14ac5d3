#include "broker/delivery/scheduled.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace sift::delivery {

absl::Status ScheduledMessages::Add(int64_t due, MessageRef message,
                                    bool restored) {
  const uint64_t cost = Cost(*message);
  if (restored) {
    // Past the bounds if need be (see the header).
  } else if (size_ >= max_messages_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the broker holds ", size_,
                     " delayed messages (max_delayed ", max_messages_, ")"));
  }
  if (!restored && bytes_ + cost > max_bytes_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("delayed messages would take ", bytes_ + cost,
                     " bytes, over max_delayed_bytes (", max_bytes_, ")"));
  }
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
    slots_[slot] = std::move(message);
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.push_back(std::move(message));
  }
  timers_.Push(due, slot);
  ++size_;
  bytes_ += cost;
  return absl::OkStatus();
}

void ScheduledMessages::TakeDue(int64_t now, std::vector<MessageRef>* out) {
  while (!timers_.empty() && timers_.top().when <= now) {
    const uint32_t slot = timers_.top().slot;
    timers_.Pop();
    bytes_ -= Cost(*slots_[slot]);
    --size_;
    out->push_back(std::move(slots_[slot]));
    slots_[slot] = nullptr;
    free_slots_.push_back(slot);
  }
}

}  // namespace sift::delivery
