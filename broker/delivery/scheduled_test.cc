#include "broker/delivery/scheduled.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sift::delivery {
namespace {

MessageRef M(std::string payload) {
  return StoredMessage::Make("t", "", "", payload);
}

std::vector<std::string> Take(ScheduledMessages& s, int64_t now) {
  std::vector<MessageRef> out;
  s.TakeDue(now, &out);
  std::vector<std::string> payloads;
  for (const MessageRef& m : out) payloads.emplace_back(m->payload());
  return payloads;
}

TEST(ScheduledMessagesTest, DueInOrderEqualTimesInArrivalOrder) {
  ScheduledMessages s(100, 1000);
  ASSERT_TRUE(s.Add(300, M("c")).ok());
  ASSERT_TRUE(s.Add(100, M("a")).ok());
  ASSERT_TRUE(s.Add(200, M("b1")).ok());
  ASSERT_TRUE(s.Add(200, M("b2")).ok());
  EXPECT_EQ(s.NextDue(), 100);
  EXPECT_TRUE(Take(s, 99).empty());
  EXPECT_EQ(Take(s, 200), (std::vector<std::string>{"a", "b1", "b2"}));
  EXPECT_EQ(s.NextDue(), 300);
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(Take(s, 1000), std::vector<std::string>{"c"});
  EXPECT_EQ(s.NextDue(), INT64_MAX);
  EXPECT_EQ(s.bytes(), 0u);
}

TEST(ScheduledMessagesTest, ForEachWalksInTheOrderTakeDueWould) {
  ScheduledMessages s(100, 1000);
  ASSERT_TRUE(s.Add(300, M("c")).ok());
  ASSERT_TRUE(s.Add(100, M("a")).ok());
  for (int i = 0; i < 20; ++i) {  // enough ties to scramble a heap's order
    ASSERT_TRUE(s.Add(200, M("b" + std::to_string(i))).ok());
  }
  std::vector<std::string> walked;
  std::vector<int64_t> dues;
  s.ForEach([&](int64_t due, const MessageRef& m) {
    dues.push_back(due);
    walked.emplace_back(m->payload());
  });
  EXPECT_EQ(walked, Take(s, 1000));  // nothing taken by the walk
  EXPECT_TRUE(std::is_sorted(dues.begin(), dues.end()));
  EXPECT_EQ(dues.size(), 22u);
}

TEST(ScheduledMessagesTest, BoundsRefuse) {
  ScheduledMessages s(2, 10);
  ASSERT_TRUE(s.Add(1, M("a")).ok());
  ASSERT_TRUE(s.Add(1, M("b")).ok());
  EXPECT_EQ(s.Add(1, M("c")).code(), absl::StatusCode::kResourceExhausted);
  Take(s, 1);
  EXPECT_EQ(s.Add(1, M("1234567890")).code(),
            absl::StatusCode::kResourceExhausted);  // topic 1 + 10 > 10
  ASSERT_TRUE(s.Add(1, M("123456789")).ok());        // exactly 10
}

TEST(ScheduledMessagesTest, RestoredMessagesPassTheBoundsWhichThenRefuse) {
  ScheduledMessages s(1, 100);
  ASSERT_TRUE(s.Add(1, M("a")).ok());
  EXPECT_FALSE(s.over_bounds());
  ASSERT_TRUE(s.Add(2, M("b"), /*restored=*/true).ok());
  ASSERT_TRUE(s.Add(3, M(std::string(200, 'c')), /*restored=*/true).ok());
  EXPECT_TRUE(s.over_bounds());
  EXPECT_EQ(s.size(), 3u);
  const absl::Status full = s.Add(4, M("d"));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  // What it holds, not only the bound (a trial read "holds max_delayed
  // (100)" while 300 were held).
  EXPECT_EQ(full.message(),
            "the broker holds 3 delayed messages (max_delayed 1)");
  EXPECT_EQ(Take(s, 3).size(), 3u);
  EXPECT_FALSE(s.over_bounds());
  EXPECT_TRUE(s.Add(4, M("d")).ok());
}

}  // namespace
}  // namespace sift::delivery
