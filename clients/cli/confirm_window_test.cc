#include "clients/cli/confirm_window.h"

#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace sift::cli {
namespace {

PublishAck Seq(uint64_t seq) {
  PublishAck ack;
  ack.stream_seq = seq;
  return ack;
}

TEST(ConfirmWindowTest, AllConfirmedKeepsTheAcksInMessageOrder) {
  ConfirmWindow window(3);
  std::vector<PublishDone> done;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(window.WaitForRoom());
    done.push_back(window.Sending());
  }
  // Answered out of order, from another thread.
  std::thread io([&done] {
    done[2](absl::OkStatus(), Seq(13));
    done[0](absl::OkStatus(), Seq(11));
    done[1](absl::OkStatus(), Seq(12));
  });
  window.WaitForAll();
  io.join();
  EXPECT_EQ(window.sent(), 3);
  EXPECT_FALSE(window.FirstRefusal().has_value());
  const std::vector<PublishAck> acks = window.acks();
  ASSERT_EQ(acks.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(acks[i].stream_seq, 11u + i);
}

TEST(ConfirmWindowTest, WaitsForRoomUntilAnAnswerComes) {
  ConfirmWindow window(2);
  PublishDone first = window.Sending();
  PublishDone second = window.Sending();
  std::thread io([&first] {
    absl::SleepFor(absl::Milliseconds(50));
    first(absl::OkStatus(), PublishAck{});
  });
  const absl::Time start = absl::Now();
  EXPECT_TRUE(window.WaitForRoom());  // not before the first answer
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(40));
  io.join();
  second(absl::OkStatus(), PublishAck{});
  window.WaitForAll();
}

TEST(ConfirmWindowTest, TheLowestRefusedMessageIsReportedWithThoseAfterIt) {
  ConfirmWindow window(8);
  std::vector<PublishDone> done;
  for (int i = 0; i < 5; ++i) done.push_back(window.Sending());
  // 4 is refused first, then 2; 3 and 5 are published.
  done[3](absl::ResourceExhaustedError("four"), PublishAck{});
  EXPECT_FALSE(window.WaitForRoom());  // send no more
  done[1](absl::ResourceExhaustedError("two"), PublishAck{});
  done[0](absl::OkStatus(), Seq(1));
  done[2](absl::OkStatus(), Seq(3));
  done[4](absl::OkStatus(), Seq(5));
  window.WaitForAll();
  std::optional<ConfirmWindow::Refusal> refusal = window.FirstRefusal();
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(refusal->n, 2);
  EXPECT_EQ(refusal->status.message(), "two");
  EXPECT_EQ(refusal->later_ok, 2);       // 3 and 5
  EXPECT_EQ(refusal->later_refused, 1);  // 4
  EXPECT_EQ(refusal->later_unknown(), 0);
}

TEST(ConfirmWindowTest, ALocalRefusalEndsTheWindow) {
  ConfirmWindow window(8);
  PublishDone first = window.Sending();
  window.Sending();  // not sent after all: its callback is dropped
  window.NotSent(absl::InvalidArgumentError("bad topic"));
  EXPECT_FALSE(window.WaitForRoom());
  first(absl::OkStatus(), Seq(1));
  window.WaitForAll();
  std::optional<ConfirmWindow::Refusal> refusal = window.FirstRefusal();
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(refusal->n, 2);
  EXPECT_EQ(refusal->later_ok + refusal->later_refused +
                refusal->later_unknown(),
            0);
}

// A lost connection fails every confirm awaited with Unavailable, and a
// timeout with DeadlineExceeded: those messages were not refused, their
// outcome is unknown (the broker may have stored them), and they are
// counted apart from the broker's refusals.
TEST(ConfirmWindowTest, UnansweredMessagesAreNotCountedAsRefused) {
  ConfirmWindow window(8);
  std::vector<PublishDone> done;
  for (int i = 0; i < 6; ++i) done.push_back(window.Sending());
  done[0](absl::OkStatus(), Seq(1));
  done[1](absl::UnavailableError("lost"), PublishAck{});
  done[2](absl::OkStatus(), Seq(3));
  done[3](absl::UnavailableError("lost"), PublishAck{});
  done[4](absl::DeadlineExceededError("late"), PublishAck{});
  done[5](absl::ResourceExhaustedError("full"), PublishAck{});
  window.WaitForAll();
  std::optional<ConfirmWindow::Refusal> refusal = window.FirstRefusal();
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(refusal->n, 2);
  EXPECT_EQ(refusal->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(refusal->later_ok, 1);         // 3
  EXPECT_EQ(refusal->later_refused, 1);    // 6
  EXPECT_EQ(refusal->later_lost, 1);       // 4
  EXPECT_EQ(refusal->later_timed_out, 1);  // 5
  EXPECT_EQ(refusal->later_unknown(), 2);
}

}  // namespace
}  // namespace sift::cli
