#include "broker/plugin/enrich.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/time/civil_time.h"
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
using ::sift::plugin::testing::RunOne;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

using Config = std::vector<std::pair<std::string, std::string>>;

std::unique_ptr<Transform> Make(Config kv = {}) {
  auto t = EnrichFactory().Create(PluginConfig(std::move(kv)));
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

std::string CreateError(Config kv) {
  absl::Status s = EnrichFactory().Create(PluginConfig(std::move(kv))).status();
  if (!s.ok()) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  }
  return ErrorOf(s);
}

// The sift-seq header enrich gives the next message on `topic`.
std::string Seq(Transform& t, std::string_view topic) {
  absl::StatusOr<Message> m = RunOne(t, Msg(topic));
  if (!m.ok()) return "error";
  return std::string(m->header("sift-seq").value_or("none"));
}

TEST(EnrichTest, DefaultsAddReceiveTimeInUnixMillisAndSequence) {
  auto t = Make();
  absl::StatusOr<Message> m =
      RunOne(*t, Msg("orders.eu", {{"x", "1"}}), AtMs(123));
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(m->headers(),
              ElementsAre(HeaderField{"x", "1"},
                          HeaderField{"sift-received-at", "1700000000123"},
                          HeaderField{"sift-seq", "1"}));
  EXPECT_EQ(m->topic(), "orders.eu");
  EXPECT_EQ(m->payload(), "payload");
}

TEST(EnrichTest, Rfc3339InUtcWithMilliseconds) {
  auto t = Make({{"time_format", "rfc3339"}});
  absl::StatusOr<Message> m = RunOne(*t, Msg("a"), AtMs(123));
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(m->header("sift-received-at"),
              Optional(std::string_view("2023-11-14T22:13:20.123Z")));
  m = RunOne(*t, Msg("a"), At(absl::FromUnixSeconds(0)));
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(m->header("sift-received-at"),
              Optional(std::string_view("1970-01-01T00:00:00.000Z")));
}

// enrich formats RFC 3339 itself (absl::FormatTime is slow) for years 0000 to
// 9999: it must agree with absl::FormatTime, leap days, year ends and times
// before 1970 included (from year 1000: absl does not pad years to 4 digits).
TEST(EnrichTest, Rfc3339AgreesWithAbslFormatTime) {
  auto t = Make({{"time_format", "rfc3339"}, {"seq", "false"}});
  absl::BitGen gen;
  std::vector<absl::Time> times = {
      absl::UnixEpoch(),
      absl::UnixEpoch() - absl::Milliseconds(1),
      absl::UnixEpoch() - absl::Nanoseconds(1),
      absl::FromCivil(absl::CivilSecond(2000, 2, 29, 23, 59, 59),
                      absl::UTCTimeZone()) +
          absl::Milliseconds(999),
      absl::FromCivil(absl::CivilSecond(1900, 3, 1), absl::UTCTimeZone()),
      absl::FromCivil(absl::CivilSecond(9999, 12, 31, 23, 59, 59),
                      absl::UTCTimeZone()) +
          absl::Microseconds(999999),
      absl::FromCivil(absl::CivilSecond(10000, 1, 1), absl::UTCTimeZone()),
      absl::FromCivil(absl::CivilSecond(1000, 1, 1), absl::UTCTimeZone()),
  };
  for (int i = 0; i < 100000; ++i) {
    // Anywhere from year 1000 to 10100, to the nanosecond.
    times.push_back(absl::FromUnixSeconds(absl::Uniform<int64_t>(
                        gen, -30'610'224'000, 256'585'000'000)) +
                    absl::Nanoseconds(absl::Uniform(gen, 0, 1'000'000'000)));
  }
  for (absl::Time when : times) {
    absl::StatusOr<Message> m = RunOne(*t, Msg("a"), At(when));
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(
        m->header("sift-received-at"),
        absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", when, absl::UTCTimeZone()))
        << absl::FormatTime(when, absl::UTCTimeZone());
  }
  // RFC 3339 years have four digits (absl::FormatTime's %Y does not pad).
  absl::StatusOr<Message> m =
      RunOne(*t, Msg("a"),
             At(absl::FromCivil(absl::CivilSecond(999, 12, 31, 23, 59, 59),
                                absl::UTCTimeZone())));
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(m->header("sift-received-at"),
              Optional(std::string_view("0999-12-31T23:59:59.000Z")));
}

TEST(EnrichTest, SequenceCountsEachTopicFromOne) {
  auto t = Make();
  EXPECT_EQ(Seq(*t, "a"), "1");
  EXPECT_EQ(Seq(*t, "a"), "2");
  EXPECT_EQ(Seq(*t, "b"), "1");
  EXPECT_EQ(Seq(*t, "a"), "3");
  EXPECT_EQ(Seq(*t, "a.b"), "1");
  EXPECT_EQ(Seq(*t, "b"), "2");
  // Another instance counts on its own.
  auto other = Make();
  EXPECT_EQ(Seq(*other, "a"), "1");
}

TEST(EnrichTest, LeastRecentlyUsedTopicIsEvictedAndRestartsAtOne) {
  auto t = Make({{"max_topics", "2"}});
  EXPECT_EQ(Seq(*t, "a"), "1");
  EXPECT_EQ(Seq(*t, "b"), "1");
  EXPECT_EQ(Seq(*t, "a"), "2");  // b is now the least recently used
  EXPECT_EQ(Seq(*t, "c"), "1");  // evicts b
  EXPECT_EQ(Seq(*t, "a"), "3");  // a kept
  EXPECT_EQ(Seq(*t, "b"), "1");  // b forgotten; evicts c
  EXPECT_EQ(Seq(*t, "c"), "1");  // evicts a
  EXPECT_EQ(Seq(*t, "b"), "2");
  EXPECT_EQ(Seq(*t, "a"), "1");
}

TEST(EnrichTest, OneTopicSlotStillCounts) {
  auto t = Make({{"max_topics", "1"}});
  EXPECT_EQ(Seq(*t, "a"), "1");
  EXPECT_EQ(Seq(*t, "a"), "2");
  EXPECT_EQ(Seq(*t, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"), "1");
  EXPECT_EQ(Seq(*t, "a"), "1");
}

TEST(EnrichTest, ManyTopicsStayWithinTheBound) {
  auto t = Make({{"max_topics", "100"}});
  for (int round = 1; round <= 3; ++round) {
    for (int i = 0; i < 1000; ++i) {
      // Each round cycles through 1000 topics, more than the bound: every
      // topic has been evicted by the time it comes back.
      ASSERT_EQ(Seq(*t, "t." + std::to_string(i)), "1") << i;
    }
  }
  for (int i = 0; i < 100; ++i) Seq(*t, "hot." + std::to_string(i));
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(Seq(*t, "hot." + std::to_string(i)), "2") << i;
  }
}

TEST(EnrichTest, ReplacesHeadersThePublisherSent) {
  auto t = Make();
  absl::StatusOr<Message> m = RunOne(
      *t, Msg("a", {{"sift-seq", "999"}, {"sift-received-at", "0"}}), AtMs(5));
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(m->headers(),
              ElementsAre(HeaderField{"sift-seq", "1"},
                          HeaderField{"sift-received-at", "1700000000005"}));
}

TEST(EnrichTest, HeadersCanBeRenamedOrTurnedOff) {
  auto t = Make({{"received_at_header", "ts"}, {"seq_header", "n"}});
  absl::StatusOr<Message> m = RunOne(*t, Msg("a"), AtMs(1));
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(m->headers(), ElementsAre(HeaderField{"ts", "1700000000001"},
                                        HeaderField{"n", "1"}));

  t = Make({{"seq", "false"}});
  m = RunOne(*t, Msg("a"), AtMs(1));
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(m->headers(),
              ElementsAre(HeaderField{"sift-received-at", "1700000000001"}));

  t = Make({{"received_at", "false"}});
  m = RunOne(*t, Msg("a"), AtMs(1));
  ASSERT_TRUE(m.ok());
  EXPECT_THAT(m->headers(), ElementsAre(HeaderField{"sift-seq", "1"}));

  // With one of them off, the two may share a name (only one is written).
  EXPECT_EQ(CreateError({{"seq", "false"}, {"received_at_header", "sift-seq"}}),
            "OK");
}

TEST(EnrichTest, ConfigErrors) {
  EXPECT_THAT(CreateError({{"format", "unix_ms"}}),
              HasSubstr("unknown setting \"format\""));
  EXPECT_EQ(CreateError({{"time_format", "iso"}}),
            "setting \"time_format\": \"iso\" is not unix_ms or rfc3339");
  EXPECT_EQ(CreateError({{"max_topics", "0"}}),
            "setting \"max_topics\": 0 is out of range (1 to 10000000)");
  EXPECT_EQ(CreateError({{"max_topics", "10000001"}}),
            "setting \"max_topics\": 10000001 is out of range (1 to 10000000)");
  EXPECT_EQ(CreateError({{"max_topics", "many"}}),
            "setting \"max_topics\": \"many\" is not an integer");
  EXPECT_EQ(CreateError({{"seq", "maybe"}}),
            "setting \"seq\": \"maybe\" is not true or false");
  EXPECT_EQ(CreateError({{"seq", "false"}, {"received_at", "false"}}),
            "settings \"received_at\" and \"seq\" are both false: enrich "
            "would add nothing");
  EXPECT_EQ(CreateError({{"seq_header", "sift-received-at"}}),
            "settings \"received_at_header\" and \"seq_header\" name the same "
            "header \"sift-received-at\"");
  EXPECT_THAT(CreateError({{"seq_header", "a b"}}),
              HasSubstr("setting \"seq_header\": header key \"a b\""));
  EXPECT_THAT(CreateError({{"received_at_header", ""}}),
              HasSubstr("setting \"received_at_header\": header key \"\" is "
                        "empty"));
}

}  // namespace
}  // namespace sift::plugin
