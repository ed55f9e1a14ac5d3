#include "broker/streams/consumer.h"

#include "gtest/gtest.h"

namespace sift::streams {
namespace {

ConsumerOptions Explicit(uint32_t max_in_flight = 10, uint32_t max_deliver = 3) {
  ConsumerOptions o;
  o.explicit_ack = true;
  o.ack.ack_wait_ms = 100;
  o.ack.max_in_flight = max_in_flight;
  o.ack.max_deliver = max_deliver;
  o.ack.backoff.initial_ms = 10;
  o.ack.backoff.jitter = 0;
  return o;
}

TEST(ConsumerTest, AcksAdvanceTheFloorOnlyWhenContiguous) {
  Consumer c("c", 0, {});
  c.options() = Explicit();
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    ASSERT_EQ(c.next_seq(), seq);
    c.Sent(seq, 100 + seq, 7, 0);
  }
  EXPECT_EQ(c.in_flight(), 3u);
  EXPECT_TRUE(c.Ack(2, 102, 7).ok());
  EXPECT_EQ(c.ack_floor(), 0u);
  EXPECT_EQ(c.State(), "floor=0 acked=2\n");
  EXPECT_TRUE(c.Ack(1, 101, 7).ok());
  EXPECT_EQ(c.ack_floor(), 2u);
  EXPECT_EQ(c.Ack(3, 103, 8).code(), absl::StatusCode::kNotFound);  // other client
  EXPECT_EQ(c.Ack(3, 999, 7).code(), absl::StatusCode::kNotFound);  // other id
  EXPECT_TRUE(c.Ack(3, 103, 7).ok());
  EXPECT_EQ(c.ack_floor(), 3u);
  EXPECT_EQ(c.Ack(3, 103, 7).code(), absl::StatusCode::kNotFound);  // twice
}

TEST(ConsumerTest, StateRoundTripsAndSkipsAckedRecordsOnResume) {
  uint64_t floor;
  std::vector<uint64_t> acked;
  ASSERT_TRUE(Consumer::ParseState("floor=4 acked=6,7,9\n", &floor, &acked).ok());
  Consumer c("c", floor, acked);
  EXPECT_EQ(c.next_seq(), 5u);
  c.Sent(5, 1, 1, 0);  // at-most-once: acked on send
  EXPECT_EQ(c.ack_floor(), 7u);
  EXPECT_EQ(c.next_seq(), 8u);
  EXPECT_EQ(c.State(), "floor=7 acked=9\n");
  EXPECT_FALSE(Consumer::ParseState("acked=1", &floor, &acked).ok());
  EXPECT_FALSE(Consumer::ParseState("floor=1 acked=x", &floor, &acked).ok());
}

TEST(ConsumerTest, ExpiredRecordsComeBackWithBackoffThenGiveUp) {
  Consumer c("", 0, {});
  c.options() = Explicit(10, 2);
  c.Sent(1, 11, 1, 0);
  std::vector<uint64_t> expired;
  EXPECT_EQ(c.Expire(50, 0, &expired), 0u);
  EXPECT_EQ(c.Expire(100, 0, &expired), 1u);
  EXPECT_EQ(expired, std::vector<uint64_t>{11});
  EXPECT_TRUE(c.DueRedeliveries(105, 10).empty());  // backoff 10 ms
  ASSERT_EQ(c.DueRedeliveries(110, 10), std::vector<uint64_t>{1});
  EXPECT_EQ(c.NextAttempt(1), 2u);
  EXPECT_FALSE(c.ExhaustedAt(1));
  c.Sent(1, 12, 1, 110);
  EXPECT_TRUE(c.Nack(1, 12, 1, 5, 120, 0).ok());
  ASSERT_EQ(c.DueRedeliveries(125, 10), std::vector<uint64_t>{1});
  EXPECT_TRUE(c.ExhaustedAt(1));  // a third delivery passes max_deliver 2
  c.GiveUp(1);
  EXPECT_EQ(c.ack_floor(), 1u);
  EXPECT_EQ(c.NextDeadline(), INT64_MAX);
}

TEST(ConsumerTest, PrefetchProgressReleaseAndRetention) {
  Consumer c("", 0, {});
  c.options() = Explicit(2);
  c.Sent(1, 1, 1, 0);
  c.Sent(2, 2, 1, 0);
  EXPECT_FALSE(c.has_room());
  EXPECT_TRUE(c.Progress(1, 1, 1, 90).ok());
  std::vector<uint64_t> expired;
  c.Expire(120, 0, &expired);  // 2 expired, 1 renewed until 190
  EXPECT_EQ(expired, std::vector<uint64_t>{2});
  EXPECT_TRUE(c.has_room());
  std::vector<uint64_t> released;
  c.Release(1, 130, &released);  // its client left: due at once
  EXPECT_EQ(released, std::vector<uint64_t>{1});
  EXPECT_EQ(c.DueRedeliveries(130, 10), (std::vector<uint64_t>{1, 2}));
  c.Forget(5);  // records 1..4 are gone (retention)
  EXPECT_EQ(c.ack_floor(), 4u);
  EXPECT_EQ(c.next_seq(), 5u);
  EXPECT_EQ(c.waiting(), 0u);
  c.Skip(5);  // another topic
  EXPECT_EQ(c.ack_floor(), 5u);
}

TEST(ConsumerTest, EachFailureIsRememberedAndANackAtMaxDeliverIsDueNow) {
  Consumer c("", 0, {});
  c.options() = Explicit(10, 2);
  c.Sent(1, 11, 1, 0);
  c.Sent(2, 12, 1, 0);
  c.Sent(3, 13, 2, 0);
  ASSERT_TRUE(c.Nack(1, 11, 1, std::nullopt, 0, 0).ok());
  std::vector<uint64_t> ids;
  c.Release(2, 50, &ids);                 // seq 3's client leaves
  EXPECT_EQ(c.Expire(100, 0, &ids), 1u);  // seq 2's ack wait runs out
  EXPECT_EQ(c.FailureAt(1), "max_deliver after nack");
  EXPECT_EQ(c.FailureAt(2), "max_deliver after ack_wait");
  EXPECT_EQ(c.FailureAt(3), "max_deliver after consumer left");
  // The second delivery of seq 1 is its last (max_deliver 2): a nack with a
  // long delay still makes it due at once, to be dead-lettered.
  ASSERT_EQ(c.DueRedeliveries(100, 10).front(), 1u);
  c.Sent(1, 21, 1, 100);
  ASSERT_TRUE(c.Nack(1, 21, 1, 60000, 100, 0).ok());
  EXPECT_TRUE(c.ExhaustedAt(1));
  EXPECT_EQ(c.DueRedeliveries(100, 10), (std::vector<uint64_t>{1, 3}));
}

}  // namespace
}  // namespace sift::streams
