// Client::PublishConfirmedAsync against a scripted fake broker
// (fake_broker.h): answers matched by request id in any order, `done` once
// per accepted call on the I/O thread, timeouts, Close(), local refusals
// and the bound on calls awaiting an answer.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/protocol/batch.h"
#include "clients/cpp/client.h"
#include "clients/cpp/fake_broker.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"

namespace sift {
namespace {

using test::Answer;
using test::ErrorFor;
using test::FakeBroker;
using test::OkFor;
using test::Out;

// What the `done` callbacks saw, by the index given to Done().
class Outcomes {
 public:
  PublishDone Done(int i) {
    return [this, i](absl::Status s, const PublishAck& ack) {
      absl::MutexLock lock(&mu_);
      calls_.push_back({i, std::move(s), ack, std::this_thread::get_id()});
    };
  }
  struct Call {
    int index;
    absl::Status status;
    PublishAck ack;
    std::thread::id thread;
  };
  // Waits up to 5 s for `n` calls; returns them all.
  std::vector<Call> WaitFor(size_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (calls().size() < n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    return calls();
  }
  std::vector<Call> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
};

// A broker that answers nothing by itself; the test Push()es the answers.
std::vector<Out> Silent(const wire::Header&) { return {}; }

std::vector<wire::Header> WaitForPubs(FakeBroker& broker, size_t n) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  std::vector<wire::Header> pubs;
  while (absl::Now() < deadline) {
    pubs.clear();
    for (const wire::Header& h : broker.received()) {
      if (h.has_pub()) pubs.push_back(h);
    }
    if (pubs.size() >= n) break;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return pubs;
}

TEST(PublishAsyncTest, AnswersInAnyOrderReachTheirCallOnceOnTheIoThread) {
  FakeBroker broker(Silent);
  auto client = test::ConnectTo(broker);
  ASSERT_NE(client, nullptr);
  Outcomes outcomes;
  PublishOptions with_id;
  with_id.msg_id = "id-0";
  ASSERT_TRUE(client
                  ->PublishConfirmedAsync("orders.a", "0", with_id,
                                          outcomes.Done(0))
                  .ok());
  ASSERT_TRUE(client
                  ->PublishConfirmedAsync("orders.b", "1", PublishOptions{},
                                          outcomes.Done(1))
                  .ok());
  ASSERT_TRUE(client
                  ->PublishConfirmedAsync("orders.c", "2", PublishOptions{},
                                          outcomes.Done(2))
                  .ok());
  // Returned at once: nothing answered yet.
  EXPECT_TRUE(outcomes.calls().empty());
  std::vector<wire::Header> pubs = WaitForPubs(broker, 3);
  ASSERT_EQ(pubs.size(), 3u);
  for (const wire::Header& h : pubs) EXPECT_TRUE(h.pub().confirm());
  EXPECT_EQ(pubs[0].pub().headers(0).value(), "id-0");

  // Last first; the second refused (a stream's full writer queue).
  wire::Header ok2 = OkFor(pubs[2].request_id());
  ok2.mutable_ok()->set_stream_seq(9);
  broker.Push(Answer(std::move(ok2)));
  broker.Push(Answer(ErrorFor(pubs[1].request_id(), wire::STORE_FULL)));
  wire::Header ok0 = OkFor(pubs[0].request_id());
  ok0.mutable_ok()->set_stream_seq(8);
  ok0.mutable_ok()->set_duplicate(true);
  broker.Push(Answer(std::move(ok0)));
  // A second answer to the same id (not from a real broker) is ignored.
  broker.Push(Answer(OkFor(pubs[0].request_id())));

  std::vector<Outcomes::Call> calls = outcomes.WaitFor(3);
  absl::SleepFor(absl::Milliseconds(50));
  calls = outcomes.calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].index, 2);
  EXPECT_TRUE(calls[0].status.ok());
  EXPECT_EQ(calls[0].ack.stream_seq, 9u);
  EXPECT_EQ(calls[1].index, 1);
  EXPECT_EQ(calls[1].status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(calls[2].index, 0);
  EXPECT_TRUE(calls[2].status.ok());
  EXPECT_EQ(calls[2].ack.stream_seq, 8u);
  EXPECT_TRUE(calls[2].ack.duplicate);
  for (const Outcomes::Call& c : calls) {
    EXPECT_NE(c.thread, std::this_thread::get_id());
  }
}

TEST(PublishAsyncTest, NoAnswerTimesOutWithoutWaitingForThePing) {
  FakeBroker broker(Silent);
  ClientOptions options = broker.Options();
  options.ping_interval = absl::Seconds(30);  // the I/O thread's usual sleep
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  Outcomes outcomes;
  const absl::Time start = absl::Now();
  ASSERT_TRUE((*client)
                  ->PublishConfirmedAsync("orders.a", "late", PublishOptions{},
                                          outcomes.Done(0),
                                          absl::Milliseconds(200))
                  .ok());
  std::vector<Outcomes::Call> calls = outcomes.WaitFor(1);
  const absl::Duration took = absl::Now() - start;
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(took, absl::Milliseconds(190));
  EXPECT_LT(took, absl::Seconds(3));
  // The answer coming after all is dropped.
  std::vector<wire::Header> pubs = WaitForPubs(broker, 1);
  ASSERT_EQ(pubs.size(), 1u);
  broker.Push(Answer(OkFor(pubs[0].request_id())));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(outcomes.calls().size(), 1u);
}

// A broker that accepts_batched_replies (docs/protocol.md §9) sends the
// answers of one pass as entries of one BATCH.
Out BatchOf(const std::vector<wire::Header>& replies) {
  Out out;
  out.header.mutable_batch()->set_count(static_cast<uint32_t>(replies.size()));
  protocol::BatchWriter writer(&out.payload);
  for (const wire::Header& reply : replies) writer.AppendReply(reply);
  out.has_payload = true;
  return out;
}

TEST(PublishAsyncTest, AnswersInOneBatchReachTheirCallsInOrder) {
  FakeBroker broker(Silent);
  auto client = test::ConnectTo(broker);
  ASSERT_NE(client, nullptr);
  Outcomes outcomes;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(client
                    ->PublishConfirmedAsync("orders.a", "x", PublishOptions{},
                                            outcomes.Done(i))
                    .ok());
  }
  std::vector<wire::Header> pubs = WaitForPubs(broker, 4);
  ASSERT_EQ(pubs.size(), 4u);
  wire::Header ok0 = OkFor(pubs[0].request_id());
  ok0.mutable_ok()->set_stream_seq(5);
  wire::Header ok3 = OkFor(pubs[3].request_id());
  ok3.mutable_ok()->set_stream_seq(5);
  ok3.mutable_ok()->set_duplicate(true);
  broker.Push(BatchOf({ok0, ErrorFor(pubs[1].request_id(), wire::STORE_FULL),
                       OkFor(pubs[2].request_id()),
                       OkFor(pubs[3].request_id() + 1000),  // unknown: ignored
                       ok3}));
  std::vector<Outcomes::Call> calls = outcomes.WaitFor(4);
  ASSERT_EQ(calls.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(calls[i].index, i);
  EXPECT_TRUE(calls[0].status.ok());
  EXPECT_EQ(calls[0].ack.stream_seq, 5u);
  EXPECT_EQ(calls[1].status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(calls[2].status.ok());
  EXPECT_TRUE(calls[3].status.ok());
  EXPECT_TRUE(calls[3].ack.duplicate);
  // A synchronous call's OK in a batch reaches it as well.
  std::thread answer([&broker] {
    std::vector<wire::Header> all = WaitForPubs(broker, 5);
    if (all.size() == 5) broker.Push(BatchOf({OkFor(all[4].request_id())}));
  });
  EXPECT_TRUE(client->PublishConfirmed("orders.b", "y", absl::Seconds(5)).ok());
  answer.join();
}

// Answered confirms leave stale deadlines behind (the client's heap drops
// them lazily): none of them may fire, and a later, shorter timeout still
// fires first and on time.
TEST(PublishAsyncTest, AnsweredConfirmsNeverTimeOutAndShortOnesStillDo) {
  FakeBroker broker(Silent);
  ClientOptions options = broker.Options();
  options.ping_interval = absl::Seconds(30);
  auto connected = Client::Connect(options);
  ASSERT_TRUE(connected.ok()) << connected.status();
  std::unique_ptr<Client> client = *std::move(connected);
  Outcomes outcomes;
  constexpr int kAnswered = 3000;  // enough to rebuild the heap twice
  for (int i = 0; i < kAnswered; ++i) {
    ASSERT_TRUE(client
                    ->PublishConfirmedAsync("orders.a", "x", PublishOptions{},
                                            outcomes.Done(i),
                                            absl::Seconds(60))
                    .ok());
    if (i % 100 == 99) {
      std::vector<wire::Header> pubs = WaitForPubs(broker, i + 1);
      ASSERT_EQ(pubs.size(), static_cast<size_t>(i + 1));
      std::vector<wire::Header> oks;
      for (int j = i - 99; j <= i; ++j) {
        oks.push_back(OkFor(pubs[j].request_id()));
      }
      broker.Push(BatchOf(oks));
      ASSERT_EQ(outcomes.WaitFor(i + 1).size(), static_cast<size_t>(i + 1));
    }
  }
  ASSERT_TRUE(client
                  ->PublishConfirmedAsync("orders.a", "long", PublishOptions{},
                                          outcomes.Done(kAnswered),
                                          absl::Seconds(60))
                  .ok());
  const absl::Time start = absl::Now();
  ASSERT_TRUE(client
                  ->PublishConfirmedAsync("orders.a", "short",
                                          PublishOptions{},
                                          outcomes.Done(kAnswered + 1),
                                          absl::Milliseconds(150))
                  .ok());
  std::vector<Outcomes::Call> calls = outcomes.WaitFor(kAnswered + 1);
  const absl::Duration took = absl::Now() - start;
  ASSERT_EQ(calls.size(), static_cast<size_t>(kAnswered + 1));
  for (int i = 0; i < kAnswered; ++i) EXPECT_TRUE(calls[i].status.ok()) << i;
  EXPECT_EQ(calls[kAnswered].index, kAnswered + 1);
  EXPECT_EQ(calls[kAnswered].status.code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(took, absl::Milliseconds(140));
  EXPECT_LT(took, absl::Seconds(3));
  std::vector<wire::Header> pubs = WaitForPubs(broker, kAnswered + 2);
  ASSERT_EQ(pubs.size(), static_cast<size_t>(kAnswered + 2));
  broker.Push(Answer(OkFor(pubs[kAnswered].request_id())));
  calls = outcomes.WaitFor(kAnswered + 2);
  ASSERT_EQ(calls.size(), static_cast<size_t>(kAnswered + 2));
  EXPECT_EQ(calls.back().index, kAnswered);
  EXPECT_TRUE(calls.back().status.ok());
}

TEST(PublishAsyncTest, LocalRefusalsNeverCallDone) {
  FakeBroker broker(Silent);
  ClientOptions options = broker.Options();
  options.max_async_confirms = 2;
  auto connected = Client::Connect(options);
  ASSERT_TRUE(connected.ok()) << connected.status();
  std::unique_ptr<Client> client = *std::move(connected);
  Outcomes outcomes;
  EXPECT_EQ(client
                ->PublishConfirmedAsync("bad..topic", "x", PublishOptions{},
                                        outcomes.Done(0))
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client
                ->PublishConfirmedAsync("orders.a", "x", PublishOptions{},
                                        PublishDone())
                .code(),
            absl::StatusCode::kFailedPrecondition);
  // The bound: two awaited, the third refused until one is answered.
  ASSERT_TRUE(client
                  ->PublishConfirmedAsync("orders.a", "1", PublishOptions{},
                                          outcomes.Done(1))
                  .ok());
  ASSERT_TRUE(client
                  ->PublishConfirmedAsync("orders.a", "2", PublishOptions{},
                                          outcomes.Done(2))
                  .ok());
  EXPECT_EQ(client
                ->PublishConfirmedAsync("orders.a", "3", PublishOptions{},
                                        outcomes.Done(3))
                .code(),
            absl::StatusCode::kResourceExhausted);
  std::vector<wire::Header> pubs = WaitForPubs(broker, 2);
  ASSERT_EQ(pubs.size(), 2u);
  broker.Push(Answer(OkFor(pubs[0].request_id())));
  ASSERT_EQ(outcomes.WaitFor(1).size(), 1u);
  EXPECT_TRUE(client
                  ->PublishConfirmedAsync("orders.a", "4", PublishOptions{},
                                          outcomes.Done(4))
                  .ok());

  // Close() fails what is still awaited, on its own thread, once each.
  client->Close();
  std::vector<Outcomes::Call> calls = outcomes.calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].index, 1);
  for (size_t i = 1; i < calls.size(); ++i) {
    EXPECT_TRUE(calls[i].index == 2 || calls[i].index == 4);
    EXPECT_EQ(calls[i].status.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(calls[i].thread, std::this_thread::get_id());
  }
  EXPECT_EQ(client
                ->PublishConfirmedAsync("orders.a", "5", PublishOptions{},
                                        outcomes.Done(5))
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(outcomes.calls().size(), 3u);
}

}  // namespace
}  // namespace sift
