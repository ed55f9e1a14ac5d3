// Redelivery backoff: how long a message waits before its next delivery
// after one failed (nacked without a delay, or its ack wait ran out).
//
// delay(attempt) = min(max_ms, initial_ms * multiplier^(attempt - 1)), where
// `attempt` is the number of the delivery that failed (1 for the first), then
// jitter takes it down, never up: the delay is drawn uniformly from the whole
// milliseconds in [delay * (1 - jitter), delay]. Jitter spreads the retries of
// messages that failed together (Celery's retry_jitter, which draws from
// [0, delay]; ours keeps the lower part of the range so a retry is never much
// earlier than the curve says) and keeps max_ms a true maximum.
//
// With the defaults: 1 s, 2 s, 4 s, ... 32 s, then 60 s for every later
// attempt, each up to 20% earlier.
//
// Pure functions and a value type: thread-safe. SplitMix64 is not (one per
// owner).
#ifndef SIFT_BROKER_DELIVERY_BACKOFF_H_
#define SIFT_BROKER_DELIVERY_BACKOFF_H_

#include <cstdint>

#include "absl/status/status.h"

namespace sift::delivery {

// Celery retry_backoff / retry_backoff_max / retry_jitter; JetStream BackOff.
struct Backoff {
  uint32_t initial_ms = 1000;
  double multiplier = 2.0;  // >= 1
  uint32_t max_ms = 60000;  // >= initial_ms
  double jitter = 0.2;      // in [0, 1]; 0 = exact delays

  bool operator==(const Backoff& o) const {
    return initial_ms == o.initial_ms && multiplier == o.multiplier &&
           max_ms == o.max_ms && jitter == o.jitter;
  }
  bool operator!=(const Backoff& o) const { return !(*this == o); }
};

// InvalidArgument naming the field unless multiplier >= 1 (and finite),
// max_ms >= initial_ms and 0 <= jitter <= 1.
absl::Status ValidateBackoff(const Backoff& backoff);

// The delay before redelivery after delivery number `attempt` (>= 1) failed,
// before jitter. Saturates at max_ms for any attempt, however large.
uint32_t BackoffDelayMs(const Backoff& backoff, uint32_t attempt);

// BackoffDelayMs with jitter applied, drawn from `random` (64 uniform bits):
// a whole number of ms in [d - floor(d * jitter), d], d = BackoffDelayMs().
uint32_t JitteredDelayMs(const Backoff& backoff, uint32_t attempt,
                         uint64_t random);

// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast generator with the same
// sequence on every platform, so a seed makes backoff jitter reproducible in
// tests. Not for anything that must be unpredictable.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

}  // namespace sift::delivery

#endif  // SIFT_BROKER_DELIVERY_BACKOFF_H_
