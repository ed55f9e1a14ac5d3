#include "broker/plugin/rate_limit.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "broker/plugin/builtin_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::plugin {
namespace {

using ::sift::plugin::testing::At;
using ::sift::plugin::testing::AtMs;
using ::sift::plugin::testing::ErrorOf;
using ::sift::plugin::testing::Msg;
using ::sift::plugin::testing::T0;
using ::testing::HasSubstr;

using Config = std::vector<std::pair<std::string, std::string>>;

std::unique_ptr<Filter> Make(Config kv) {
  auto f = RateLimitFactory().Create(PluginConfig(std::move(kv)));
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *std::move(f) : nullptr;
}

std::string CreateError(Config kv) {
  absl::Status s =
      RateLimitFactory().Create(PluginConfig(std::move(kv))).status();
  if (!s.ok()) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  }
  return ErrorOf(s);
}

// How many of `n` messages at `context` the filter keeps. Every drop must
// say "rate_limit".
int Kept(Filter& f, int n, const CallContext& context) {
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<Verdict> v = f.Apply(Msg("a"), context);
    EXPECT_TRUE(v.ok());
    if (v->keep) {
      ++kept;
    } else {
      EXPECT_EQ(v->reason, "rate_limit");
    }
  }
  return kept;
}

TEST(RateLimitTest, BurstDefaultsToTheRateAndStartsFull) {
  auto f = Make({{"rate_per_second", "10"}});
  EXPECT_EQ(Kept(*f, 15, AtMs(0)), 10);
  EXPECT_EQ(Kept(*f, 5, AtMs(99)), 0);
  EXPECT_EQ(Kept(*f, 5, AtMs(100)), 1);  // one token per 100 ms
  EXPECT_EQ(Kept(*f, 5, AtMs(350)), 2);
  EXPECT_EQ(Kept(*f, 5, AtMs(399)), 0);
  EXPECT_EQ(Kept(*f, 5, AtMs(400)), 1);
  // A long pause refills up to the burst, no more.
  EXPECT_EQ(Kept(*f, 50, AtMs(60000)), 10);
}

TEST(RateLimitTest, RefillsOverSimulatedTimeAtTheConfiguredRate) {
  auto f = Make({{"rate_per_second", "100"}, {"burst", "5"}});
  // 1000 messages a second for 10 s (one per ms): 5 (the full bucket) plus
  // 100 a second get through.
  int kept = 0;
  for (int ms = 0; ms < 10000; ++ms) kept += Kept(*f, 1, AtMs(ms));
  EXPECT_EQ(kept, 5 + 1000 - 1);  // the last token refills at 10000 ms
  EXPECT_EQ(Kept(*f, 1, AtMs(10000)), 1);
}

TEST(RateLimitTest, ThirdsOfASecondDoNotDrift) {
  auto f = Make({{"rate_per_second", "3"}, {"burst", "2"}});
  int kept = 0;
  for (int ms = 0; ms < 60000; ++ms) kept += Kept(*f, 1, AtMs(ms));
  // Two at 0 ms, then one each third of a second: 334, 667, 1000, 1334, ...
  // 59667 ms. Adding up thirds of a token in floating point would find
  // 0.999... at 1000 ms and fall a message behind.
  EXPECT_EQ(kept, 2 + 179);
}

TEST(RateLimitTest, FractionalRate) {
  auto f = Make({{"rate_per_second", "0.5"}});  // burst 1
  EXPECT_EQ(Kept(*f, 3, AtMs(0)), 1);
  EXPECT_EQ(Kept(*f, 3, AtMs(1999)), 0);
  EXPECT_EQ(Kept(*f, 3, AtMs(2000)), 1);
  EXPECT_EQ(Kept(*f, 3, AtMs(3000)), 0);
}

TEST(RateLimitTest, FractionalBurst) {
  auto f = Make({{"rate_per_second", "1"}, {"burst", "2.5"}});
  EXPECT_EQ(Kept(*f, 5, AtMs(0)), 2);    // 2.5 tokens: two whole ones
  EXPECT_EQ(Kept(*f, 5, AtMs(500)), 1);  // 0.5 + 0.5 = 1
  EXPECT_EQ(Kept(*f, 5, AtMs(60000)), 2);
}

TEST(RateLimitTest, DroppedMessagesTakeNoTokens) {
  auto f = Make({{"rate_per_second", "1"}, {"burst", "1"}});
  EXPECT_EQ(Kept(*f, 1, AtMs(0)), 1);
  EXPECT_EQ(Kept(*f, 1000, AtMs(500)), 0);
  EXPECT_EQ(Kept(*f, 1, AtMs(1000)), 1);
}

TEST(RateLimitTest, ClockSteppingBackStandsStill) {
  auto f = Make({{"rate_per_second", "1"}, {"burst", "1"}});
  EXPECT_EQ(Kept(*f, 1, AtMs(10000)), 1);
  EXPECT_EQ(Kept(*f, 1, At(T0() - absl::Hours(1))), 0);
  EXPECT_EQ(Kept(*f, 1, AtMs(10999)), 0);
  EXPECT_EQ(Kept(*f, 1, AtMs(11000)), 1);
}

TEST(RateLimitTest, ConfigErrors) {
  EXPECT_EQ(CreateError({}), "missing setting \"rate_per_second\"");
  EXPECT_EQ(CreateError({{"burst", "1"}}),
            "missing setting \"rate_per_second\"");
  EXPECT_THAT(CreateError({{"rate", "1"}}),
              HasSubstr("unknown setting \"rate\" (known: rate_per_second, "
                        "burst)"));
  EXPECT_EQ(CreateError({{"rate_per_second", "fast"}}),
            "setting \"rate_per_second\": \"fast\" is not a number");
  EXPECT_EQ(CreateError({{"rate_per_second", "0"}}),
            "setting \"rate_per_second\": 0 is out of range (more than 0, at "
            "most 1e+09)");
  EXPECT_THAT(CreateError({{"rate_per_second", "-1"}}),
              HasSubstr("setting \"rate_per_second\": -1 is out of range"));
  EXPECT_THAT(CreateError({{"rate_per_second", "nan"}}),
              HasSubstr("setting \"rate_per_second\": nan is out of range"));
  EXPECT_THAT(CreateError({{"rate_per_second", "inf"}}),
              HasSubstr("setting \"rate_per_second\": inf is out of range"));
  EXPECT_EQ(CreateError({{"rate_per_second", "1"}, {"burst", "0.5"}}),
            "setting \"burst\": 0.5 is out of range (1 to 1e+09)");
  EXPECT_EQ(CreateError({{"rate_per_second", "1"}, {"burst", "2e9"}}),
            "setting \"burst\": 2e+09 is out of range (1 to 1e+09)");
  EXPECT_EQ(CreateError({{"rate_per_second", "1"}, {"burst", "x"}}),
            "setting \"burst\": \"x\" is not a number");
  EXPECT_EQ(CreateError({{"rate_per_second", "1e9"}, {"burst", "1e9"}}), "OK");
  EXPECT_EQ(CreateError({{"rate_per_second", "0.001"}}), "OK");
}

}  // namespace
}  // namespace sift::plugin
