// Client::Close() and ~Client from the client's own callbacks (which run on
// its I/O thread, the thread Close() otherwise waits for), against a
// scripted fake broker (fake_broker.h): no abort, no hang, and what still
// waits fails with FailedPrecondition as after any Close().
#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "clients/cpp/fake_broker.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"

namespace sift {
namespace {

using test::Answer;
using test::ConnectTo;
using test::DeliverOf;
using test::FakeBroker;
using test::OkFor;
using test::Out;

// Accepts every SUB; answers nothing else.
std::vector<Out> AcceptSubs(const wire::Header& h) {
  if (h.has_sub() && h.request_id() != 0) return {Answer(OkFor(h.request_id()))};
  return {};
}

uint64_t SidOf(FakeBroker& broker, const char* pattern) {
  std::optional<wire::Header> sub = broker.WaitFor([&](const wire::Header& h) {
    return h.has_sub() && h.sub().pattern() == pattern;
  });
  return sub.has_value() ? sub->sub().sid() : 0;
}

// Close() says BYE only once the broker has read everything sent before it
// (a PING's PONG): the sockets of the process's shared ZeroMQ context are
// not waited for at exit, so what was only in their pipes would be lost by
// a program that exits right after Close().
TEST(CloseClientTest, CloseWaitsForTheBrokerToHaveReadEverything) {
  FakeBroker broker(AcceptSubs);
  std::unique_ptr<Client> client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);
  broker.set_answer_pings(false);
  ASSERT_TRUE(client->Publish("jobs.last", "x").ok());
  absl::Notification closed;
  std::thread closer([&] {
    client->Close();
    closed.Notify();
  });
  std::optional<wire::Header> ping = broker.WaitFor([](const wire::Header& h) {
    return h.has_ping() && h.request_id() != 0;
  });
  ASSERT_TRUE(ping.has_value());
  // Its PUB came first, and Close() still waits for the PONG.
  std::vector<wire::Header> got = broker.received();
  ASSERT_FALSE(got.empty());
  EXPECT_TRUE(got.front().has_pub());
  EXPECT_FALSE(closed.WaitForNotificationWithTimeout(absl::Milliseconds(200)));
  wire::Header pong;
  pong.set_request_id(ping->request_id());
  pong.mutable_pong();
  broker.Push(Answer(pong));
  EXPECT_TRUE(closed.WaitForNotificationWithTimeout(absl::Seconds(1)));
  closer.join();
  EXPECT_TRUE(broker
                  .WaitFor([](const wire::Header& h) { return h.has_bye(); })
                  .has_value());
}

// Close() fails what still waits for an answer, Request() included (it
// waited out its own timeout).
TEST(CloseClientTest, CloseFailsAPendingRequest) {
  FakeBroker broker(AcceptSubs);  // answers no request
  std::unique_ptr<Client> client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);
  absl::Status status;
  absl::Duration took;
  std::thread requester([&] {
    const absl::Time start = absl::Now();
    status = client->Request("svc.x", "q", absl::Seconds(30)).status();
    took = absl::Now() - start;
  });
  ASSERT_TRUE(broker
                  .WaitFor([](const wire::Header& h) {
                    return h.has_pub() && h.pub().topic() == "svc.x";
                  })
                  .has_value());
  client->Close();
  requester.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_LT(took, absl::Seconds(5));
}

// Flush() returns once the broker has answered a PING sent after what was
// queued, and DeadlineExceeded if it does not in time.
TEST(CloseClientTest, FlushWaitsForThePong) {
  FakeBroker broker(AcceptSubs);
  std::unique_ptr<Client> client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Publish("jobs.a", "x").ok());
  EXPECT_TRUE(client->Flush(absl::Seconds(5)).ok());
  broker.set_answer_pings(false);
  ASSERT_TRUE(client->Publish("jobs.b", "y").ok());
  const absl::Status late = client->Flush(absl::Milliseconds(200));
  EXPECT_EQ(late.code(), absl::StatusCode::kDeadlineExceeded) << late;
  // The PING came after the PUB it vouches for.
  std::vector<wire::Header> got = broker.received();
  auto pub = std::find_if(got.begin(), got.end(), [](const wire::Header& h) {
    return h.has_pub() && h.pub().topic() == "jobs.b";
  });
  auto ping = std::find_if(got.begin(), got.end(), [](const wire::Header& h) {
    return h.has_ping() && h.request_id() != 0;
  });
  ASSERT_NE(pub, got.end());
  ASSERT_NE(ping, got.end());
  EXPECT_LT(pub - got.begin(), ping - got.begin());
  broker.set_answer_pings(true);
}

TEST(CloseClientTest, CloseFromASubscriptionCallback) {
  FakeBroker broker(AcceptSubs);
  std::unique_ptr<Client> client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);
  absl::Notification called;
  absl::Status after_close;
  SubscribeOptions options;
  options.callback = [&](const Message&) {
    client->Close();  // returns at once: the I/O thread stops afterwards
    after_close = client->Publish("jobs.b", "late");
    called.Notify();
  };
  auto sub = client->Subscribe("jobs.>", options);
  ASSERT_TRUE(sub.ok()) << sub.status();
  const uint64_t sid = SidOf(broker, "jobs.>");
  ASSERT_NE(sid, 0u);
  broker.Push(DeliverOf(sid, "jobs.a", "x", 0, 0));
  ASSERT_TRUE(called.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(after_close.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client->Publish("jobs.c", "later").code(),
            absl::StatusCode::kFailedPrecondition);
  client->Close();  // again, from this thread: waits for the I/O thread
}

// Calls that wait for an answer would wait for the thread running the
// callback: they fail at once; Unsubscribe does not wait there.
TEST(CloseClientTest, BlockingCallsInACallbackFailAtOnce) {
  FakeBroker broker(AcceptSubs);
  std::unique_ptr<Client> client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);
  absl::Notification called;
  absl::Status confirmed, subscribed, requested, stats, unsubscribed;
  absl::Duration took;
  std::unique_ptr<Subscription> sub;
  SubscribeOptions options;
  options.callback = [&](const Message&) {
    const absl::Time start = absl::Now();
    confirmed = client->PublishConfirmed("jobs.x", "y", absl::Seconds(3));
    subscribed = client->Subscribe("other.>").status();
    requested = client->Request("svc.x", "q", absl::Seconds(3)).status();
    stats = client->Stats(absl::Seconds(3)).status();
    unsubscribed = sub->Unsubscribe();
    took = absl::Now() - start;
    called.Notify();
  };
  auto made = client->Subscribe("jobs.>", options);
  ASSERT_TRUE(made.ok()) << made.status();
  sub = *std::move(made);
  const uint64_t sid = SidOf(broker, "jobs.>");
  ASSERT_NE(sid, 0u);
  broker.Push(DeliverOf(sid, "jobs.a", "x", 0, 0));
  ASSERT_TRUE(called.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(confirmed.code(), absl::StatusCode::kFailedPrecondition)
      << confirmed;
  EXPECT_EQ(subscribed.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(requested.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(stats.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(unsubscribed.ok()) << unsubscribed;
  EXPECT_LT(took, absl::Seconds(1));  // none of them waited out a timeout
  // The UNSUB went out.
  EXPECT_TRUE(broker
                  .WaitFor([sid](const wire::Header& h) {
                    return h.has_unsub() && h.unsub().sid() == sid;
                  })
                  .has_value());
  // Outside a callback the same calls work as usual.
  EXPECT_TRUE(client->Subscribe("other.>").ok());
}

TEST(CloseClientTest, CloseFromAConfirmCallbackFailsTheOthers) {
  FakeBroker broker([](const wire::Header&) { return std::vector<Out>{}; });
  std::unique_ptr<Client> client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);
  absl::Notification first, second;
  absl::Status second_status;
  ASSERT_TRUE(client
                  ->PublishConfirmedAsync(
                      "orders.a", "1", PublishOptions{},
                      [&](absl::Status, const PublishAck&) {
                        client->Close();
                        first.Notify();
                      })
                  .ok());
  ASSERT_TRUE(client
                  ->PublishConfirmedAsync(
                      "orders.b", "2", PublishOptions{},
                      [&](absl::Status s, const PublishAck&) {
                        second_status = s;
                        second.Notify();
                      },
                      absl::Seconds(30))
                  .ok());
  std::optional<wire::Header> pub = broker.WaitFor([](const wire::Header& h) {
    return h.has_pub() && h.pub().topic() == "orders.a";
  });
  ASSERT_TRUE(pub.has_value());
  broker.Push(Answer(OkFor(pub->request_id())));
  ASSERT_TRUE(first.WaitForNotificationWithTimeout(absl::Seconds(5)));
  // The other one, never answered, fails once the I/O thread has stopped.
  ASSERT_TRUE(second.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(second_status.code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CloseClientTest, DestroyingTheClientInItsOwnCallback) {
  FakeBroker broker(AcceptSubs);
  auto client = std::make_shared<std::unique_ptr<Client>>(ConnectTo(broker));
  ASSERT_NE(*client, nullptr);
  absl::Notification destroyed;
  SubscribeOptions options;
  options.callback = [client, &destroyed](const Message&) {
    client->reset();  // ~Client closes; the I/O thread frees it later
    destroyed.Notify();
  };
  {
    auto sub = (*client)->Subscribe("jobs.>", options);
    ASSERT_TRUE(sub.ok()) << sub.status();
    const uint64_t sid = SidOf(broker, "jobs.>");
    ASSERT_NE(sid, 0u);
    broker.Push(DeliverOf(sid, "jobs.a", "x", 0, 0));
    ASSERT_TRUE(destroyed.WaitForNotificationWithTimeout(absl::Seconds(5)));
    EXPECT_EQ(*client, nullptr);
  }  // the Subscription goes last, after its Client
  // A new client in the same process works (the shared context is intact).
  std::unique_ptr<Client> again = ConnectTo(broker);
  ASSERT_NE(again, nullptr);
  EXPECT_TRUE(again->Publish("jobs.d", "y").ok());
}

}  // namespace
}  // namespace sift
