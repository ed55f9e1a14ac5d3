// Retained values and delayed publishes (docs/protocol.md §8.2) through a
// real siftd: MQTT-style retained messages (wildcards, clearing, not for
// queue groups, bounded) and publishes routed after a delay or at a time
// (Celery's countdown and eta), with their errors.
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/protocol/codec.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"
#include "tests/harness.h"
#include "tests/siftd_process.h"
#include "tests/test_util.h"

namespace sift::test {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(10);

PublishOptions Retain() {
  PublishOptions o;
  o.retain = true;
  return o;
}

// A new subscription gets the retained value of every topic its pattern
// matches, marked retained, before new publishes; the last value wins; an
// empty retained publish clears; queue-group members get none.
TEST(LaterTest, RetainedValuesGoToNewSubscriptions) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto sub = Connect(siftd->endpoint());
  ASSERT_NE(sub, nullptr);
  PublishOptions with_header = Retain();
  with_header.headers = {{"unit", "C"}};
  ASSERT_TRUE(pub->PublishConfirmedWith("temp.kitchen", "19", Retain()).ok());
  ASSERT_TRUE(
      pub->PublishConfirmedWith("temp.kitchen", "21", with_header).ok());
  ASSERT_TRUE(pub->PublishConfirmedWith("temp.hall", "18", Retain()).ok());
  ASSERT_TRUE(pub->PublishConfirmedWith("temp.attic", "5", Retain()).ok());
  ASSERT_TRUE(pub->PublishConfirmedWith("temp.attic", "", Retain()).ok());
  ASSERT_TRUE(pub->PublishConfirmed("temp.cellar", "10", kTimeout).ok());

  auto s = sub->Subscribe("temp.*");
  ASSERT_TRUE(s.ok());
  auto hall = (*s)->Next(kTimeout);
  auto kitchen = (*s)->Next(kTimeout);
  ASSERT_TRUE(hall.ok() && kitchen.ok());
  EXPECT_EQ(hall->topic(), "temp.hall");  // topic order
  EXPECT_EQ(hall->payload(), "18");
  EXPECT_TRUE(hall->retained());
  EXPECT_EQ(kitchen->payload(), "21");
  EXPECT_EQ(kitchen->header("unit"), "C");
  EXPECT_EQ((*s)->Next(absl::Milliseconds(300)).status().code(),
            absl::StatusCode::kDeadlineExceeded);  // attic cleared, cellar not
  ASSERT_TRUE(pub->PublishConfirmed("temp.hall", "17", kTimeout).ok());
  auto live = (*s)->Next(kTimeout);
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(live->payload(), "17");
  EXPECT_FALSE(live->retained());

  SubscribeOptions group;
  group.queue_group = "g";
  auto member = sub->Subscribe("temp.*", group);
  ASSERT_TRUE(member.ok());
  EXPECT_EQ((*member)->Next(absl::Milliseconds(300)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(LaterTest, RetainedValuesAreBounded) {
  auto siftd = StartSiftd({"--max_retained=1"});
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_TRUE(pub->PublishConfirmedWith("a", "1", Retain()).ok());
  ASSERT_TRUE(pub->PublishConfirmedWith("a", "2", Retain()).ok());  // replace
  absl::Status s = pub->PublishConfirmedWith("b", "1", Retain());
  EXPECT_EQ(protocol::WireCodeOf(s), wire::STORE_FULL) << s;
  auto stats = pub->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(Drops(*stats, "store_full"), 1u);
}

// A delayed publish is routed after its delay (or at its time), not before;
// the confirm comes at once.
TEST(LaterTest, DelayedPublishesArriveWhenDue) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto sub = Connect(siftd->endpoint());
  ASSERT_NE(sub, nullptr);
  auto s = sub->Subscribe("jobs");
  ASSERT_TRUE(s.ok());
  PublishOptions later;
  later.delay = absl::Milliseconds(600);
  PublishOptions at;
  at.deliver_at = absl::Now() + absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  ASSERT_TRUE(pub->PublishConfirmedWith("jobs", "late", later).ok());
  ASSERT_TRUE(pub->PublishConfirmedWith("jobs", "at", at).ok());
  ASSERT_TRUE(pub->PublishConfirmed("jobs", "now", kTimeout).ok());
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(250));
  auto now = (*s)->Next(kTimeout);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->payload(), "now");
  auto first = (*s)->Next(kTimeout);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->payload(), "at");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(280));
  auto second = (*s)->Next(kTimeout);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->payload(), "late");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(580));
}

// Publishes with one deliver_at come out in the order they were published
// (protocol.md §8.2). Their due time was the loop's cached clock plus
// deliver_at minus a fresh read of the wall clock, which moved between
// them: a trial saw N-2 N-7 N-12 ... for 30 of them.
TEST(LaterTest, PublishesWithOneDeliverAtComeOutInPublishOrder) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto sub = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(sub, nullptr);
  auto s = sub->Subscribe("at.once");
  ASSERT_TRUE(s.ok());
  constexpr int kCount = 300;
  PublishOptions at;
  at.deliver_at = absl::Now() + absl::Milliseconds(1500);
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(pub->PublishWith("at.once", absl::StrCat(i), at).ok());
    if (i % 50 == 0) absl::SleepFor(absl::Milliseconds(3));  // span ms
  }
  ASSERT_TRUE(pub->Flush(kTimeout).ok());
  std::vector<int> got;
  for (int i = 0; i < kCount; ++i) {
    auto m = (*s)->Next(kTimeout);
    ASSERT_TRUE(m.ok()) << m.status();
    int n = -1;
    ASSERT_TRUE(absl::SimpleAtoi(std::string(m->payload()), &n));
    got.push_back(n);
  }
  std::vector<int> want(kCount);
  for (int i = 0; i < kCount; ++i) want[i] = i;
  EXPECT_EQ(got, want);
}

TEST(LaterTest, BadDelaysAreRefused) {
  auto siftd = StartSiftd({"--max_delay_ms=1000", "--max_delayed=1"});
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  PublishOptions far;
  far.delay = absl::Seconds(2);
  EXPECT_EQ(protocol::WireCodeOf(pub->PublishConfirmedWith("t", "x", far)),
            wire::INVALID_REQUEST);
  PublishOptions both;
  both.delay = absl::Milliseconds(10);
  both.deliver_at = absl::Now();
  EXPECT_EQ(protocol::WireCodeOf(pub->PublishConfirmedWith("t", "x", both)),
            wire::INVALID_REQUEST);
  PublishOptions retained_later = Retain();
  retained_later.delay = absl::Milliseconds(10);
  EXPECT_EQ(protocol::WireCodeOf(
                pub->PublishConfirmedWith("t", "x", retained_later)),
            wire::INVALID_REQUEST);
  PublishOptions ok;
  ok.delay = absl::Milliseconds(900);
  ASSERT_TRUE(pub->PublishConfirmedWith("t", "x", ok).ok());
  EXPECT_EQ(protocol::WireCodeOf(pub->PublishConfirmedWith("t", "y", ok)),
            wire::STORE_FULL);
}

// [[schedules]] in the config: the broker publishes them itself; a bad one
// stops siftd at start with the file and line.
TEST(LaterTest, RecurringSchedulesPublishOnTheirOwn) {
  const std::string dir = TestTmpDir();
  const std::string config = dir + "/schedules.toml";
  {
    std::ofstream out(config);
    out << "[[schedules]]\nname = \"beat\"\ntopic = \"health.beat\"\n"
           "payload = \"tick\"\nheaders = { kind = \"beat\" }\n"
           "every_ms = 200\n\n"
           "[[schedules]]\nname = \"nightly\"\ntopic = \"tasks.nightly\"\n"
           "cron = \"30 2 * * mon-fri\"\n";
  }
  auto siftd = StartSiftd({"--config=" + config});
  ASSERT_NE(siftd, nullptr);
  auto sub = Connect(siftd->endpoint());
  ASSERT_NE(sub, nullptr);
  auto s = sub->Subscribe("health.*");
  ASSERT_TRUE(s.ok());
  const absl::Time start = absl::Now();
  for (int i = 0; i < 3; ++i) {
    auto m = (*s)->Next(kTimeout);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->payload(), "tick");
    EXPECT_EQ(m->header("kind"), "beat");
  }
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(350));  // 200 ms apart

  const std::string bad = dir + "/bad_schedules.toml";
  {
    std::ofstream out(bad);
    out << "[[schedules]]\nname = \"x\"\ntopic = \"t\"\n"
           "cron = \"61 * * * *\"\n";
  }
  auto path = SiftdPath();
  ASSERT_TRUE(path.ok());
  const std::string log = dir + "/bad_schedules.log";
  const pid_t pid = Spawn({*path, "--config=" + bad,
                           "--endpoints=tcp://127.0.0.1:0"}, log);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(Reap(pid, absl::Seconds(10)), 2);
  EXPECT_NE(ReadFile(log).find("minute field"), std::string::npos)
      << ReadFile(log);
}

}  // namespace
}  // namespace sift::test
