#include "broker/delivery/backoff.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace sift::delivery {

absl::Status ValidateBackoff(const Backoff& backoff) {
  // Written so that NaN fails every check.
  if (!(backoff.multiplier >= 1.0) || std::isinf(backoff.multiplier)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "backoff multiplier must be a number >= 1, got ", backoff.multiplier));
  }
  if (backoff.max_ms < backoff.initial_ms) {
    return absl::InvalidArgumentError(
        absl::StrCat("backoff max_ms (", backoff.max_ms,
                     ") is below initial_ms (", backoff.initial_ms, ")"));
  }
  if (!(backoff.jitter >= 0.0 && backoff.jitter <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("backoff jitter must be in [0, 1], got ", backoff.jitter));
  }
  return absl::OkStatus();
}

uint32_t BackoffDelayMs(const Backoff& backoff, uint32_t attempt) {
  if (attempt <= 1 || backoff.initial_ms >= backoff.max_ms) {
    return backoff.initial_ms < backoff.max_ms ? backoff.initial_ms
                                               : backoff.max_ms;
  }
  // pow() overflows to inf for large attempts; `!(d < max)` also catches NaN.
  const double d =
      backoff.initial_ms *
      std::pow(backoff.multiplier, static_cast<double>(attempt - 1));
  if (!(d < backoff.max_ms)) return backoff.max_ms;
  return static_cast<uint32_t>(std::llround(d));
}

uint32_t JitteredDelayMs(const Backoff& backoff, uint32_t attempt,
                         uint64_t random) {
  const uint32_t delay = BackoffDelayMs(backoff, attempt);
  if (!(backoff.jitter > 0.0) || delay == 0) return delay;
  const double jitter = backoff.jitter < 1.0 ? backoff.jitter : 1.0;
  const uint64_t span = static_cast<uint64_t>(std::floor(delay * jitter));
  return delay - static_cast<uint32_t>(random % (span + 1));
}

}  // namespace sift::delivery
