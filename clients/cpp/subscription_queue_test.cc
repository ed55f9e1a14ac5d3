// SubscriptionQueue: both bounds, the newest message dropped and counted,
// each run of drops reported once by Pop() at its place in the stream,
// closing, and waking a waiting Pop().
#include "clients/cpp/subscription_queue.h"

#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace sift::internal {

// Declared a friend of Message in client.h.
struct MessageForTest {
  // A message that owns its bytes, as the client's I/O thread makes them.
  static Message Make(std::string_view payload) {
    auto bytes = std::make_shared<std::string>(payload);
    Message m;
    m.topic_ = "t";
    m.payload_ = *bytes;
    m.storage_ = std::move(bytes);
    return m;
  }
};

namespace {

Message M(std::string_view payload) { return MessageForTest::Make(payload); }

// The payload Pop() returns now, or the status as text.
std::string PopNow(SubscriptionQueue& q) {
  absl::StatusOr<Message> m = q.Pop(absl::ZeroDuration());
  if (!m.ok()) return absl::StatusCodeToString(m.status().code());
  return std::string(m->payload());
}

TEST(SubscriptionQueueTest, WithinBoundsKeepsOrderAndDropsNothing) {
  SubscriptionQueue q(10, 1000);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(q.Push(M(absl::StrCat("m", i))));
  EXPECT_EQ(q.size(), 10u);
  EXPECT_EQ(q.bytes(), 20u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(PopNow(q), absl::StrCat("m", i));
  EXPECT_EQ(PopNow(q), "DEADLINE_EXCEEDED");
  EXPECT_EQ(q.dropped(), 0u);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(SubscriptionQueueTest, MessageBoundDropsTheNewestAndCountsThem) {
  SubscriptionQueue q(3, 0);
  for (int i = 0; i < 5; ++i) q.Push(M(absl::StrCat("m", i)));
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.dropped(), 2u);
  EXPECT_EQ(PopNow(q), "m0");
  EXPECT_EQ(PopNow(q), "m1");
  EXPECT_EQ(PopNow(q), "m2");
  absl::StatusOr<Message> gap = q.Pop(absl::ZeroDuration());
  ASSERT_TRUE(absl::IsResourceExhausted(gap.status())) << gap.status();
  EXPECT_NE(gap.status().message().find("2 messages were dropped"),
            std::string_view::npos)
      << gap.status();
  EXPECT_EQ(PopNow(q), "DEADLINE_EXCEEDED");  // reported once
  EXPECT_EQ(q.dropped(), 2u);                 // the count stays
  EXPECT_TRUE(q.Push(M("m5")));               // room again
  EXPECT_EQ(PopNow(q), "m5");
}

TEST(SubscriptionQueueTest, EachRunOfDropsIsReportedWhereItHappened) {
  SubscriptionQueue q(2, 0);
  EXPECT_TRUE(q.Push(M("a")));
  EXPECT_TRUE(q.Push(M("b")));
  EXPECT_FALSE(q.Push(M("c")));  // run 1: one message
  EXPECT_EQ(PopNow(q), "a");
  EXPECT_TRUE(q.Push(M("d")));
  EXPECT_FALSE(q.Push(M("e")));  // run 2: two messages
  EXPECT_FALSE(q.Push(M("f")));
  EXPECT_EQ(q.dropped(), 3u);
  EXPECT_EQ(PopNow(q), "b");
  absl::StatusOr<Message> gap1 = q.Pop(absl::ZeroDuration());
  ASSERT_TRUE(absl::IsResourceExhausted(gap1.status())) << gap1.status();
  EXPECT_NE(gap1.status().message().find("1 message was dropped"),
            std::string_view::npos)
      << gap1.status();
  EXPECT_EQ(PopNow(q), "d");
  absl::StatusOr<Message> gap2 = q.Pop(absl::ZeroDuration());
  ASSERT_TRUE(absl::IsResourceExhausted(gap2.status())) << gap2.status();
  EXPECT_NE(gap2.status().message().find("2 messages were dropped"),
            std::string_view::npos)
      << gap2.status();
  EXPECT_EQ(PopNow(q), "DEADLINE_EXCEEDED");
}

TEST(SubscriptionQueueTest, ByteBoundCountsPayloadBytes) {
  SubscriptionQueue q(0, 10);
  EXPECT_TRUE(q.Push(M("1234")));
  EXPECT_TRUE(q.Push(M("5678")));
  EXPECT_FALSE(q.Push(M("abc")));  // 11 > 10
  EXPECT_TRUE(q.Push(M("90")));    // exactly 10
  EXPECT_FALSE(q.Push(M("x")));
  EXPECT_EQ(q.bytes(), 10u);
  EXPECT_EQ(q.dropped(), 2u);
  EXPECT_EQ(PopNow(q), "1234");
  EXPECT_EQ(q.bytes(), 6u);
  EXPECT_TRUE(q.Push(M("wxyz")));  // room again after a Pop
  EXPECT_EQ(q.bytes(), 10u);
}

TEST(SubscriptionQueueTest, PayloadLargerThanTheByteBoundIsAlwaysDropped) {
  SubscriptionQueue q(0, 4);
  EXPECT_FALSE(q.Push(M("12345")));
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.dropped(), 1u);
  EXPECT_EQ(PopNow(q), "RESOURCE_EXHAUSTED");
  EXPECT_TRUE(q.Push(M("1234")));
  EXPECT_EQ(PopNow(q), "1234");
}

TEST(SubscriptionQueueTest, EmptyPayloadsAreBoundedByCount) {
  SubscriptionQueue q(2, 1);
  EXPECT_TRUE(q.Push(M("")));
  EXPECT_TRUE(q.Push(M("")));
  EXPECT_FALSE(q.Push(M("")));
  EXPECT_EQ(q.dropped(), 1u);
}

TEST(SubscriptionQueueTest, ZeroMeansNoBound) {
  SubscriptionQueue q(0, 0);
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(q.Push(M("payload")));
  EXPECT_EQ(q.size(), 100000u);
  EXPECT_EQ(q.dropped(), 0u);
}

TEST(SubscriptionQueueTest, CloseReturnsTheRestThenTrailingDropsThenCancelled) {
  SubscriptionQueue q(1, 0);
  q.Push(M("kept"));
  q.Push(M("lost"));
  q.Close();
  EXPECT_EQ(PopNow(q), "kept");
  EXPECT_EQ(PopNow(q), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(PopNow(q), "CANCELLED");
  EXPECT_EQ(PopNow(q), "CANCELLED");
}

TEST(SubscriptionQueueTest, CloseGivesItsReason) {
  SubscriptionQueue q(10, 0);
  q.Close("stream \"s\" was deleted");
  q.Close("later: ignored");
  absl::StatusOr<Message> m = q.Pop(absl::ZeroDuration());
  EXPECT_TRUE(absl::IsCancelled(m.status()));
  EXPECT_EQ(m.status().message(),
            "subscription ended: stream \"s\" was deleted");
}

// The client lost the broker for good (ClientOptions::reconnect false):
// what is queued comes first, then Close()'s code and reason, every time.
TEST(SubscriptionQueueTest, CloseWithACodeReturnsItAfterWhatIsQueued) {
  SubscriptionQueue q(10, 0);
  q.Push(M("kept"));
  q.Close("lost the broker", absl::StatusCode::kUnavailable);
  q.Close("later: ignored");
  EXPECT_EQ(PopNow(q), "kept");
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<Message> m = q.Pop(absl::ZeroDuration());
    EXPECT_TRUE(absl::IsUnavailable(m.status())) << m.status();
    EXPECT_EQ(m.status().message(), "subscription ended: lost the broker");
  }
}

TEST(SubscriptionQueueTest, WaitingPopWakesOnPushDropAndClose) {
  SubscriptionQueue q(1, 4);
  const absl::Duration kLong = absl::Seconds(30);  // only reached on failure
  {
    std::thread pusher([&q] {
      absl::SleepFor(absl::Milliseconds(20));
      q.Push(M("late"));
    });
    absl::StatusOr<Message> m = q.Pop(kLong);
    pusher.join();
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->payload(), "late");
  }
  {
    std::thread pusher([&q] {
      absl::SleepFor(absl::Milliseconds(20));
      q.Push(M("too large"));  // dropped: over 4 bytes
    });
    absl::StatusOr<Message> m = q.Pop(kLong);
    pusher.join();
    EXPECT_TRUE(absl::IsResourceExhausted(m.status())) << m.status();
  }
  {
    std::thread closer([&q] {
      absl::SleepFor(absl::Milliseconds(20));
      q.Close();
    });
    const absl::Time start = absl::Now();
    absl::StatusOr<Message> m = q.Pop(kLong);
    closer.join();
    EXPECT_TRUE(absl::IsCancelled(m.status())) << m.status();
    EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  }
}

TEST(SubscriptionQueueTest, DroppedIsReadableWhilePushing) {
  SubscriptionQueue q(10, 0);
  std::thread pusher([&q] {
    for (int i = 0; i < 10010; ++i) q.Push(M("x"));
  });
  uint64_t last = 0;
  while (last < 10000) {  // the pusher gets there
    const uint64_t now = q.dropped();
    EXPECT_GE(now, last);  // never decreases
    if (now < last) break;
    last = now;
  }
  pusher.join();
  EXPECT_EQ(q.dropped(), 10000u);
  EXPECT_EQ(q.size(), 10u);
}

}  // namespace
}  // namespace sift::internal
