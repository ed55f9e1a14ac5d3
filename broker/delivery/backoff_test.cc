#include "broker/delivery/backoff.h"

#include <cstdint>
#include <limits>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace sift::delivery {
namespace {

TEST(BackoffTest, DefaultsDoubleFromOneSecondUpToAMinute) {
  const Backoff b;
  std::vector<uint32_t> got;
  for (uint32_t attempt = 1; attempt <= 8; ++attempt) {
    got.push_back(BackoffDelayMs(b, attempt));
  }
  EXPECT_EQ(got, (std::vector<uint32_t>{1000, 2000, 4000, 8000, 16000, 32000,
                                        60000, 60000}));
}

TEST(BackoffTest, SaturatesForHugeAttempts) {
  const Backoff b;
  EXPECT_EQ(BackoffDelayMs(b, 1000), 60000u);
  EXPECT_EQ(BackoffDelayMs(b, std::numeric_limits<uint32_t>::max()), 60000u);
  Backoff flat;
  flat.multiplier = 1.0;
  EXPECT_EQ(BackoffDelayMs(flat, 1), 1000u);
  EXPECT_EQ(BackoffDelayMs(flat, 50), 1000u);
}

TEST(BackoffTest, FractionalMultiplierRoundsToTheNearestMs) {
  Backoff b;
  b.initial_ms = 100;
  b.multiplier = 1.5;
  b.max_ms = 1000;
  EXPECT_EQ(BackoffDelayMs(b, 1), 100u);
  EXPECT_EQ(BackoffDelayMs(b, 2), 150u);
  EXPECT_EQ(BackoffDelayMs(b, 3), 225u);
  EXPECT_EQ(BackoffDelayMs(b, 4), 338u);   // 337.5
  EXPECT_EQ(BackoffDelayMs(b, 7), 1000u);  // 1139 capped
}

TEST(BackoffTest, ZeroInitialMeansImmediate) {
  Backoff b;
  b.initial_ms = 0;
  EXPECT_EQ(BackoffDelayMs(b, 1), 0u);
  EXPECT_EQ(BackoffDelayMs(b, 9), 0u);
  EXPECT_EQ(JitteredDelayMs(b, 3, 12345), 0u);
}

TEST(BackoffTest, JitterStaysWithinTheLowerBandAndSpreads) {
  Backoff b;  // jitter 0.2
  SplitMix64 rng(42);
  for (uint32_t attempt = 1; attempt <= 10; ++attempt) {
    const uint32_t d = BackoffDelayMs(b, attempt);
    const uint32_t low = d - static_cast<uint32_t>(d * 0.2);
    std::set<uint32_t> seen;
    uint32_t min_seen = d, max_seen = 0;
    for (int i = 0; i < 2000; ++i) {
      const uint32_t j = JitteredDelayMs(b, attempt, rng.Next());
      ASSERT_GE(j, low) << "attempt " << attempt;
      ASSERT_LE(j, d) << "attempt " << attempt;
      seen.insert(j);
      min_seen = std::min(min_seen, j);
      max_seen = std::max(max_seen, j);
    }
    EXPECT_GT(seen.size(), 100u);  // spread, not a constant
    // Both ends of the band are reached (within 1%).
    EXPECT_LT(min_seen, low + d / 100 + 1);
    EXPECT_GT(max_seen + d / 100 + 1, d);
  }
}

TEST(BackoffTest, NoJitterIsExact) {
  Backoff b;
  b.jitter = 0;
  for (uint64_t r : {0ULL, 1ULL, ~0ULL}) {
    EXPECT_EQ(JitteredDelayMs(b, 3, r), 4000u);
  }
}

TEST(BackoffTest, FullJitterReachesZero) {
  Backoff b;
  b.jitter = 1.0;
  b.initial_ms = 10;
  EXPECT_EQ(JitteredDelayMs(b, 1, 10), 0u);  // 10 % 11 = 10 -> 10 - 10
  EXPECT_EQ(JitteredDelayMs(b, 1, 11), 10u);
}

TEST(BackoffTest, SameSeedSameSequence) {
  SplitMix64 a(7), b(7), c(8);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs |= x != c.Next();
  }
  EXPECT_TRUE(differs);
}

TEST(BackoffTest, Validation) {
  EXPECT_TRUE(ValidateBackoff(Backoff{}).ok());
  Backoff b;
  b.multiplier = 0.5;
  EXPECT_EQ(ValidateBackoff(b).code(), absl::StatusCode::kInvalidArgument);
  b.multiplier = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(ValidateBackoff(b).code(), absl::StatusCode::kInvalidArgument);
  b.multiplier = std::numeric_limits<double>::infinity();
  EXPECT_EQ(ValidateBackoff(b).code(), absl::StatusCode::kInvalidArgument);
  b = Backoff{};
  b.max_ms = 10;
  EXPECT_EQ(ValidateBackoff(b).code(), absl::StatusCode::kInvalidArgument);
  b = Backoff{};
  b.jitter = 1.5;
  EXPECT_EQ(ValidateBackoff(b).code(), absl::StatusCode::kInvalidArgument);
  b.jitter = -0.1;
  EXPECT_EQ(ValidateBackoff(b).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sift::delivery
