#include "clients/cpp/subscription_queue.h"

#include <utility>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sift::internal {

bool SubscriptionQueue::Push(Message m) {
  const size_t size = m.payload().size();
  absl::MutexLock lock(&mu_);
  // Written so that neither sum can overflow.
  const bool fits =
      (max_messages_ == 0 || messages_.size() < max_messages_) &&
      (max_bytes_ == 0 || (size <= max_bytes_ && bytes_ <= max_bytes_ - size));
  if (ABSL_PREDICT_TRUE(fits)) {
    messages_.push_back(std::move(m));
    bytes_ += size;
    ++pushed_;
    return true;
  }
  // Dropped: the caller's `m` frees its bytes after the lock is released.
  dropped_.store(dropped_.load(std::memory_order_relaxed) + 1,
                 std::memory_order_relaxed);
  if (!gaps_.empty() && gaps_.back().before == pushed_) {
    ++gaps_.back().count;  // nothing queued since the last drop
  } else {
    gaps_.push_back(Gap{pushed_, 1});
  }
  return false;
}

absl::StatusOr<Message> SubscriptionQueue::Pop(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(this, &SubscriptionQueue::ReadyLocked),
                       timeout);
  if (GapAtHeadLocked()) {
    const uint64_t count = gaps_.front().count;
    gaps_.pop_front();
    return absl::ResourceExhaustedError(absl::StrCat(
        count, count == 1 ? " message was" : " messages were",
        " dropped here: the subscription's queue was full (Next() did not "
        "keep up; bounds: ClientOptions::subscription_queue_max_messages and "
        "_bytes)"));
  }
  if (!messages_.empty()) {
    Message m = std::move(messages_.front());
    messages_.pop_front();
    bytes_ -= m.payload().size();
    ++popped_;
    return m;
  }
  if (closed_) {
    return absl::Status(closed_code_,
                        why_closed_.empty()
                            ? "subscription ended"
                            : "subscription ended: " + why_closed_);
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no message within ", absl::FormatDuration(timeout)));
}

void SubscriptionQueue::Close(std::string why, absl::StatusCode code) {
  absl::MutexLock lock(&mu_);
  if (!closed_) {
    why_closed_ = std::move(why);
    closed_code_ = code;
  }
  closed_ = true;
}

size_t SubscriptionQueue::size() const {
  absl::MutexLock lock(&mu_);
  return messages_.size();
}

size_t SubscriptionQueue::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

}  // namespace sift::internal
