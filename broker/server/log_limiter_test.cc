#include "broker/server/log_limiter.h"

#include "gtest/gtest.h"

namespace sift {
namespace {

TEST(LogLimiterTest, AllowsPerWindowAndCountsTheRest) {
  LogLimiter limiter(/*per_window=*/2, /*window_ms=*/1000);
  EXPECT_TRUE(limiter.Allow(0));
  EXPECT_TRUE(limiter.Allow(10));
  EXPECT_FALSE(limiter.Allow(20));
  EXPECT_FALSE(limiter.Allow(30));
  EXPECT_EQ(limiter.suppressed(), 2u);
  EXPECT_TRUE(limiter.Allow(1000));  // a new window
  EXPECT_EQ(limiter.TakeSuppressed(), 2u);
  EXPECT_EQ(limiter.suppressed(), 0u);
}

// The line that reports the suppressed count is not itself a suppressed
// line: asking for it in a full window must not inflate the count (it did,
// once a second, in siftd's housekeeping).
TEST(LogLimiterTest, ASummaryDeniedIsNotCounted) {
  LogLimiter limiter(/*per_window=*/1, /*window_ms=*/1000);
  EXPECT_TRUE(limiter.Allow(0));
  EXPECT_FALSE(limiter.Allow(1));
  for (int t = 2; t < 10; ++t) {
    EXPECT_FALSE(limiter.Allow(t, /*count_if_denied=*/false));
  }
  EXPECT_EQ(limiter.suppressed(), 1u);
}

}  // namespace
}  // namespace sift
