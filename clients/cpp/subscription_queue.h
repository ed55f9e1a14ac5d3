// SubscriptionQueue holds one subscription's messages between the client's
// I/O thread, which delivers them, and Subscription::Next(), which takes them.
// It is bounded in messages and in payload bytes; a message that would take
// it past either bound is dropped (the newest is dropped, never one already
// queued, as NATS clients do with their "pending limits": nats.go
// Subscription.SetPendingLimits, Dropped() and ErrSlowConsumer). Drops are
// counted, and Pop() reports each run of them once, at its place in the
// stream (nats.go's NextMsg reports ErrSlowConsumer on its next call
// instead; here the caller also learns where the hole is).
//
// Thread-safety: safe for concurrent use; Push() is called by the I/O thread,
// Pop() by the application (one thread at a time, see Subscription::Next()),
// dropped() by anyone. Push() is on the per-message path of Next()
// subscriptions: it takes the mutex once and allocates nothing beyond the
// deque's own blocks, as before the queue was bounded; a run of drops
// costs one entry in a second, small deque. Internal to clients/cpp.
#ifndef SIFT_CLIENTS_CPP_SUBSCRIPTION_QUEUE_H_
#define SIFT_CLIENTS_CPP_SUBSCRIPTION_QUEUE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"

namespace sift::internal {

class SubscriptionQueue {
 public:
  // Bounds as in ClientOptions::subscription_queue_max_messages/_bytes;
  // 0 means no bound of that kind.
  SubscriptionQueue(size_t max_messages, size_t max_bytes)
      : max_messages_(max_messages), max_bytes_(max_bytes) {}

  SubscriptionQueue(const SubscriptionQueue&) = delete;
  SubscriptionQueue& operator=(const SubscriptionQueue&) = delete;

  // Appends `m` if the queue, with it, stays within both bounds; otherwise
  // drops it and counts the drop. Returns whether `m` was queued. Messages
  // pushed after Close() are still queued (Pop() returns them first).
  // REQUIRES: `m` owns its bytes.
  bool Push(Message m);

  // Waits up to `timeout` for the next item and returns it:
  //   - the oldest queued message;
  //   - ResourceExhausted, once, where messages were dropped: every message
  //     returned before it arrived before the drops, every one after it,
  //     after them (the message says how many were dropped there);
  //   - once the queue is closed and nothing is left, Cancelled (or the
  //     code Close() was given);
  //   - DeadlineExceeded if nothing came in time.
  absl::StatusOr<Message> Pop(absl::Duration timeout);

  // Ends the queue: Pop() returns what is left, then Cancelled ("subscription
  // ended", and `why` after a colon when given: e.g. the broker's notice
  // that the stream was deleted), or `code` instead of Cancelled (e.g.
  // Unavailable: the client lost the broker for good). The first Close()
  // decides.
  void Close(std::string why = "",
             absl::StatusCode code = absl::StatusCode::kCancelled);

  // Messages dropped since the queue was made. Never decreases.
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // What is queued now (messages; payload bytes).
  size_t size() const;
  size_t bytes() const;

 private:
  // `count` messages were dropped between the queued messages numbered
  // `before` - 1 and `before` (numbered from 0 in push order).
  struct Gap {
    uint64_t before;
    uint64_t count;
  };

  // True if Pop() has something to return. REQUIRES: mu_.
  bool ReadyLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !messages_.empty() || GapAtHeadLocked() || closed_;
  }
  bool GapAtHeadLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !gaps_.empty() && gaps_.front().before == popped_;
  }

  // Constant after construction.
  const size_t max_messages_;
  const size_t max_bytes_;

  // Written under mu_, read without it by dropped().
  std::atomic<uint64_t> dropped_{0};

  mutable absl::Mutex mu_;
  std::deque<Message> messages_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;     // payload bytes in messages_
  uint64_t pushed_ ABSL_GUARDED_BY(mu_) = 0;  // messages ever queued
  uint64_t popped_ ABSL_GUARDED_BY(mu_) = 0;  // messages ever returned
  // Runs of drops not yet reported, oldest first. Touched only when
  // messages are dropped; at most one per queued message, plus one.
  std::deque<Gap> gaps_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::string why_closed_ ABSL_GUARDED_BY(mu_);  // Close()'s reason
  absl::StatusCode closed_code_ ABSL_GUARDED_BY(mu_) =
      absl::StatusCode::kCancelled;
};

}  // namespace sift::internal

#endif  // SIFT_CLIENTS_CPP_SUBSCRIPTION_QUEUE_H_
