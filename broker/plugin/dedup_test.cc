#include "broker/plugin/dedup.h"

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

using ::sift::plugin::testing::AtMs;
using ::sift::plugin::testing::ErrorOf;
using ::sift::plugin::testing::Msg;
using ::testing::HasSubstr;

using Config = std::vector<std::pair<std::string, std::string>>;

std::unique_ptr<Filter> Make(Config kv = {}) {
  auto f = DedupFactory().Create(PluginConfig(std::move(kv)));
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *std::move(f) : nullptr;
}

std::string CreateError(Config kv) {
  absl::Status s = DedupFactory().Create(PluginConfig(std::move(kv))).status();
  if (!s.ok()) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  }
  return ErrorOf(s);
}

// "keep", or "drop:<reason>", for a message with header `key`: `id` at `ms`.
std::string See(Filter& f, std::string id, int64_t ms,
                std::string key = "sift-msg-id") {
  absl::StatusOr<Verdict> v =
      f.Apply(Msg("orders.eu", {{std::move(key), std::move(id)}}), AtMs(ms));
  if (!v.ok()) return "error";
  return v->keep ? "keep" : "drop:" + std::string(v->reason);
}

TEST(DedupTest, SameIdAgainIsDropped) {
  auto f = Make();
  EXPECT_EQ(See(*f, "a", 0), "keep");
  EXPECT_EQ(See(*f, "b", 1), "keep");
  EXPECT_EQ(See(*f, "a", 2), "drop:duplicate");
  EXPECT_EQ(See(*f, "b", 3), "drop:duplicate");
  EXPECT_EQ(See(*f, "A", 4), "keep");  // ids compare byte for byte
}

TEST(DedupTest, MessagesWithoutTheIdPass) {
  auto f = Make();
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Verdict> v = f->Apply(Msg("a"), AtMs(i));
    ASSERT_TRUE(v.ok());
    EXPECT_TRUE(v->keep);
    EXPECT_EQ(See(*f, "", i), "keep");                   // empty id
    EXPECT_EQ(See(*f, "x", i, "other-header"), "keep");  // other header
  }
}

TEST(DedupTest, WindowRunsFromTheFirstSightingAndExpires) {
  auto f = Make();  // 120000 ms
  EXPECT_EQ(See(*f, "a", 0), "keep");
  EXPECT_EQ(See(*f, "a", 60000), "drop:duplicate");
  EXPECT_EQ(See(*f, "a", 119999), "drop:duplicate");  // does not extend it
  EXPECT_EQ(See(*f, "a", 120000), "keep");            // window passed
  EXPECT_EQ(See(*f, "a", 120001), "drop:duplicate");  // a new window
  EXPECT_EQ(See(*f, "a", 239999), "drop:duplicate");
  EXPECT_EQ(See(*f, "a", 240000), "keep");
}

TEST(DedupTest, CustomHeaderAndWindow) {
  auto f = Make({{"header", "Nats-Msg-Id"}, {"window_ms", "10"}});
  EXPECT_EQ(See(*f, "a", 0, "Nats-Msg-Id"), "keep");
  EXPECT_EQ(See(*f, "a", 5, "sift-msg-id"), "keep");  // not the id header
  EXPECT_EQ(See(*f, "a", 9, "Nats-Msg-Id"), "drop:duplicate");
  EXPECT_EQ(See(*f, "a", 10, "Nats-Msg-Id"), "keep");
}

TEST(DedupTest, OldestIdIsEvictedWhenFull) {
  auto f = Make({{"max_ids", "2"}});
  EXPECT_EQ(See(*f, "a", 0), "keep");
  EXPECT_EQ(See(*f, "b", 1), "keep");
  EXPECT_EQ(See(*f, "c", 2), "keep");            // forgets a
  EXPECT_EQ(See(*f, "c", 3), "drop:duplicate");  // dups do not evict
  EXPECT_EQ(See(*f, "b", 4), "drop:duplicate");
  EXPECT_EQ(See(*f, "a", 5), "keep");  // forgotten; forgets b
  EXPECT_EQ(See(*f, "b", 6), "keep");  // forgets c
  EXPECT_EQ(See(*f, "a", 7), "drop:duplicate");
  EXPECT_EQ(See(*f, "c", 8), "keep");
}

TEST(DedupTest, ManyEvictionsKeepTheNewestIds) {
  auto f = Make({{"max_ids", "100"}, {"window_ms", "1000"}});
  // 10000 distinct ids, 10 per ms: the bound (100 ids) binds, not the window.
  for (int i = 0; i < 10000; ++i) {
    ASSERT_EQ(See(*f, std::to_string(i), i / 10), "keep") << i;
    if (i >= 99) {
      ASSERT_EQ(See(*f, std::to_string(i - 99), i / 10), "drop:duplicate") << i;
    }
  }
  EXPECT_EQ(See(*f, "9899", 999), "keep");  // forgotten; forgets 9900
  EXPECT_EQ(See(*f, "9901", 999), "drop:duplicate");
  EXPECT_EQ(See(*f, "9900", 999), "keep");
  // Once the window has passed, everything is forgotten.
  for (int i = 9800; i < 10000; ++i) {
    ASSERT_EQ(See(*f, std::to_string(i), 2000), "keep") << i;
  }
}

TEST(DedupTest, ManyExpiriesKeepTheIdsInTheWindow) {
  auto f = Make({{"max_ids", "1000"}, {"window_ms", "5"}});
  // 10 ids per ms: an id is remembered for the next 5 ms (50 ids).
  for (int i = 0; i < 10000; ++i) {
    ASSERT_EQ(See(*f, std::to_string(i), i / 10), "keep") << i;
    if (i >= 40) {
      ASSERT_EQ(See(*f, std::to_string(i - 40), i / 10), "drop:duplicate") << i;
    }
    if (i >= 60) {  // seen 6 ms or more ago
      ASSERT_EQ(See(*f, std::to_string(i - 60), i / 10), "keep") << i;
    }
  }
}

TEST(DedupTest, ClockSteppingBackStandsStill) {
  auto f = Make({{"window_ms", "100"}});
  EXPECT_EQ(See(*f, "a", 1000), "keep");
  EXPECT_EQ(See(*f, "a", 0), "drop:duplicate");  // as if at 1000
  EXPECT_EQ(See(*f, "b", 0), "keep");            // seen "at 1000"
  EXPECT_EQ(See(*f, "b", 1099), "drop:duplicate");
  EXPECT_EQ(See(*f, "a", 1100), "keep");
  EXPECT_EQ(See(*f, "b", 1100), "keep");
}

TEST(DedupTest, ConfigErrors) {
  EXPECT_THAT(CreateError({{"window", "1"}}),
              HasSubstr("unknown setting \"window\" (known: header, "
                        "window_ms, max_ids)"));
  EXPECT_EQ(CreateError({{"window_ms", "0"}}),
            "setting \"window_ms\": 0 is out of range (1 to 86400000)");
  EXPECT_EQ(CreateError({{"window_ms", "2m"}}),
            "setting \"window_ms\": \"2m\" is not an integer");
  EXPECT_EQ(CreateError({{"window_ms", "86400001"}}),
            "setting \"window_ms\": 86400001 is out of range (1 to 86400000)");
  EXPECT_EQ(CreateError({{"max_ids", "0"}}),
            "setting \"max_ids\": 0 is out of range (1 to 10000000)");
  EXPECT_EQ(CreateError({{"max_ids", "-5"}}),
            "setting \"max_ids\": -5 is out of range (1 to 10000000)");
  EXPECT_THAT(CreateError({{"header", "msg id"}}),
              HasSubstr("setting \"header\": header key \"msg id\""));
  EXPECT_THAT(CreateError({{"header", ""}}),
              HasSubstr("setting \"header\": header key \"\" is empty"));
  EXPECT_EQ(CreateError({{"max_ids", "1"}, {"window_ms", "86400000"}}), "OK");
}

}  // namespace
}  // namespace sift::plugin
