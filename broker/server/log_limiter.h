// LogLimiter bounds how many lines a noisy source (misbehaving clients) may
// log per time window, and counts what it suppressed so that can be logged.
//
// Thread-safety: not thread-safe; owned by one thread.
#ifndef SIFT_BROKER_SERVER_LOG_LIMITER_H_
#define SIFT_BROKER_SERVER_LOG_LIMITER_H_

#include <cstdint>

namespace sift {

class LogLimiter {
 public:
  LogLimiter(int per_window, int64_t window_ms)
      : per_window_(per_window), window_ms_(window_ms) {}

  // True if a line may be logged at `now_ms`; otherwise counts it as
  // suppressed, unless `count_if_denied` is false (for the summary line that
  // reports the suppressed count: it is not a suppressed line itself).
  bool Allow(int64_t now_ms, bool count_if_denied = true) {
    if (now_ms - window_start_ms_ >= window_ms_) {
      window_start_ms_ = now_ms;
      used_ = 0;
    }
    if (used_ < per_window_) {
      ++used_;
      return true;
    }
    if (count_if_denied) ++suppressed_;
    return false;
  }
  uint64_t suppressed() const { return suppressed_; }
  uint64_t TakeSuppressed() {
    uint64_t n = suppressed_;
    suppressed_ = 0;
    return n;
  }

 private:
  const int per_window_;
  const int64_t window_ms_;
  int64_t window_start_ms_ = INT64_MIN / 2;
  int used_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace sift

#endif  // SIFT_BROKER_SERVER_LOG_LIMITER_H_
