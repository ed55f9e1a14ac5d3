#include "broker/delivery/timer_queue.h"

#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace sift::delivery {
namespace {

TEST(TimerQueueTest, PopsEarliestFirstAndTiesInPushOrder) {
  TimerQueue q;
  q.Push(30, 0);
  q.Push(10, 1);
  q.Push(20, 2);
  q.Push(10, 3);
  q.Push(10, 4);
  std::vector<uint32_t> order;
  while (!q.empty()) {
    order.push_back(q.top().slot);
    q.Pop();
  }
  EXPECT_EQ(order, (std::vector<uint32_t>{1, 3, 4, 2, 0}));
}

TEST(TimerQueueTest, SeqsAreUniqueAndNonZero) {
  TimerQueue q;
  const uint64_t a = q.Push(5, 0);
  const uint64_t b = q.Push(5, 0);
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
}

TEST(TimerQueueTest, CompactKeepsOnlyLiveTimersInOrder) {
  TimerQueue q;
  std::mt19937 rng(1);
  std::vector<uint64_t> live_seq(1000);
  // Every slot is rescheduled several times; only its last timer is live.
  for (int round = 0; round < 4; ++round) {
    for (uint32_t slot = 0; slot < 1000; ++slot) {
      live_seq[slot] = q.Push(rng() % 5000, slot);
    }
  }
  EXPECT_EQ(q.size(), 4000u);
  q.Compact(
      [&](const TimerQueue::Timer& t) { return live_seq[t.slot] == t.seq; });
  EXPECT_EQ(q.size(), 1000u);
  int64_t last = -1;
  while (!q.empty()) {
    EXPECT_GE(q.top().when, last);
    EXPECT_EQ(live_seq[q.top().slot], q.top().seq);
    last = q.top().when;
    q.Pop();
  }
}

}  // namespace
}  // namespace sift::delivery
