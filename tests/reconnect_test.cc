// Broker restarts: a client with reconnect on re-establishes its session and
// its subscriptions by itself after siftd is stopped (SIGTERM) and started
// again on the same port. And what becomes of calls waiting for an answer
// when siftd dies (SIGKILL) with their requests sent: they fail at once with
// Unavailable, not at their timeout; those not sent yet go out on the next
// session. A client whose new HELLO a full broker refuses (TOO_MANY_CLIENTS)
// says it again until there is room, and so does Connect(). A client with
// reconnect off does not come back: it ends, and every call fails with
// Unavailable.
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/protocol/codec.h"
#include "clients/cpp/call_in_flight.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"
#include "tests/harness.h"
#include "tests/raw_dealer.h"
#include "tests/siftd_process.h"
#include "tests/test_util.h"

namespace sift::test {
namespace {

// Reconnection takes a moment (ZeroMQ's reconnect interval, HELLO,
// resubscription); attempts are bounded in number and time.
constexpr int kMaxAttempts = 150;
constexpr absl::Duration kAttemptWait = absl::Milliseconds(200);

// The timeout of calls that siftd's death must end early: long, so that a
// call ending in less than half of it cannot have timed out, however slow
// the machine.
constexpr absl::Duration kLongTimeout = absl::Seconds(20);
// How long a call gets to hand its request to the frozen siftd's socket
// (the client's I/O thread sends it within microseconds).
constexpr absl::Duration kToSend = absl::Milliseconds(500);

// The outcome of a call InFlight (call_in_flight.h), waiting for it at most
// 2 * kLongTimeout.
Outcome Result(std::future<Outcome>& call) {
  return ResultWithin(call, 2 * kLongTimeout);
}

// A call that siftd's death ended: Unavailable, saying so, well before its
// timeout.
void ExpectLost(const Outcome& outcome, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_TRUE(absl::IsUnavailable(outcome.status)) << outcome.status;
  EXPECT_NE(outcome.status.message().find("connection to the broker was lost"),
            absl::string_view::npos)
      << outcome.status;
  EXPECT_LT(outcome.took, kLongTimeout / 2);
}

class ReconnectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto siftd = SiftdProcess::Start();
    ASSERT_TRUE(siftd.ok()) << siftd.status();
    siftd_ = *std::move(siftd);
  }
  void TearDown() override {
    if (HasFailure() && siftd_ != nullptr) {
      std::cerr << "--- siftd log tail ---\n" << siftd_->LogTail(8000) << "\n";
    }
  }

  absl::StatusOr<std::unique_ptr<Client>> NewClient(const std::string& name,
                                                    bool reconnect = true) {
    ClientOptions options;
    options.endpoint = siftd_->endpoint();
    options.name = name;
    options.connect_timeout = absl::Seconds(10);
    options.reconnect = reconnect;
    return Client::Connect(options);
  }

  // Freezes siftd (SIGSTOP): it reads nothing more, so a request sent now
  // stays unanswered, while its connection stays open (the kernel takes the
  // bytes). Kill() ends it.
  void Freeze() { ASSERT_EQ(kill(siftd_->pid(), SIGSTOP), 0); }
  // Lets a frozen siftd run again (SIGCONT).
  void Thaw() { ASSERT_EQ(kill(siftd_->pid(), SIGCONT), 0); }
  // SIGKILLs siftd: its connections close, its sessions are gone.
  void Kill() { ASSERT_EQ(kill(siftd_->pid(), SIGKILL), 0); }

  // Restarts siftd and checks the old one shut down cleanly.
  void RestartBroker() {
    SIFT_ASSERT_OK(siftd_->Restart());
    ASSERT_TRUE(siftd_->IsRunning());
  }

  // Publishes "<prefix><attempt>" on `topic` from `publisher` until `sub`
  // receives one of them (bounded). Returns the received payload or "".
  static std::string PublishUntilReceived(Client& publisher, Subscription& sub,
                                          const std::string& topic,
                                          const std::string& prefix) {
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      const absl::Status status =
          publisher.Publish(topic, absl::StrCat(prefix, attempt));
      if (!status.ok()) {
        ADD_FAILURE() << "publish attempt " << attempt << ": " << status;
        return "";
      }
      absl::StatusOr<Message> msg = sub.Next(kAttemptWait);
      if (msg.ok()) return std::string(msg->payload());
    }
    return "";
  }

  std::unique_ptr<SiftdProcess> siftd_;
};

TEST_F(ReconnectTest, SubscriptionSurvivesBrokerRestart) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto subscriber, NewClient("subscriber"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto sub, subscriber->Subscribe("news.>"));
  {
    SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
    SIFT_ASSERT_OK(publisher->PublishConfirmed("news.before", "before"));
    SIFT_ASSERT_OK_AND_ASSIGN(Message msg, sub->Next(absl::Seconds(10)));
    EXPECT_EQ(msg.payload(), "before");
  }
  const uint64_t reconnects_before = subscriber->reconnects();
  const std::string old_id = subscriber->client_id();

  RestartBroker();
  EXPECT_EQ(siftd_->exit_code().value_or(-1000), 0)
      << "siftd did not exit 0 on SIGTERM";
  EXPECT_FALSE(siftd_->was_killed());

  // A fresh publisher on the new broker; the old subscription must receive
  // once the subscriber has reconnected and resubscribed.
  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher2"));
  const std::string got =
      PublishUntilReceived(*publisher, *sub, "news.after", "after-");
  EXPECT_FALSE(got.empty()) << "no message reached the old subscription "
                               "after the restart";
  EXPECT_GT(subscriber->reconnects(), reconnects_before);
  EXPECT_FALSE(subscriber->client_id().empty());

  // From now on delivery is reliable again: drain stragglers of the retry
  // loop, then a confirmed publish arrives.
  for (int i = 0; i < kMaxAttempts && sub->Next(absl::Milliseconds(50)).ok();
       ++i) {
  }
  SIFT_ASSERT_OK(publisher->PublishConfirmed("news.final", "final"));
  SIFT_ASSERT_OK_AND_ASSIGN(Message final_msg, sub->Next(absl::Seconds(10)));
  EXPECT_EQ(final_msg.payload(), "final");

  // The reconnected client can publish too.
  SIFT_ASSERT_OK_AND_ASSIGN(auto listener, publisher->Subscribe("back.>"));
  SIFT_ASSERT_OK(subscriber->PublishConfirmed("back.again", "hello"));
  SIFT_ASSERT_OK_AND_ASSIGN(Message back, listener->Next(absl::Seconds(10)));
  EXPECT_EQ(back.payload(), "hello");
}

// A broker that comes back with a lower limit refuses one of the SUBs the
// client sends again after the reconnect: that subscription ends, saying
// why (before, it stayed open and silent, the refusal counted nowhere but
// async_errors()), and the other goes on.
TEST_F(ReconnectTest, ASubscriptionTheNewBrokerRefusesEndsSayingWhy) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto subscriber, NewClient("subscriber"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto a, subscriber->Subscribe("a.>"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto b, subscriber->Subscribe("b.>"));
  const uint64_t reconnects_before = subscriber->reconnects();
  const int port = siftd_->port();
  SIFT_ASSERT_OK(siftd_->Stop());
  SiftdOptions options;
  options.port = port;
  options.extra_flags = {"--max_subscriptions_per_client=1"};
  auto restarted = SiftdProcess::Start(options);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  siftd_ = *std::move(restarted);
  for (int i = 0; i < kMaxAttempts && subscriber->reconnects() ==
                                          reconnects_before;
       ++i) {
    absl::SleepFor(kAttemptWait);
  }
  ASSERT_GT(subscriber->reconnects(), reconnects_before);
  // One of the two ends (the order the client resubscribes in is its own).
  absl::Status ended;
  Subscription* kept = nullptr;
  for (int i = 0; i < kMaxAttempts && ended.ok(); ++i) {
    for (Subscription* s : {a.get(), b.get()}) {
      absl::StatusOr<Message> m = s->Next(absl::Milliseconds(50));
      if (!m.ok() && !absl::IsDeadlineExceeded(m.status())) {
        ended = m.status();
        kept = s == a.get() ? b.get() : a.get();
        break;
      }
    }
  }
  ASSERT_TRUE(absl::IsCancelled(ended)) << ended;
  EXPECT_TRUE(absl::StrContains(ended.message(),
                                "subscribed again after a reconnect"))
      << ended;
  EXPECT_EQ(subscriber->async_errors(), 1u);
  EXPECT_TRUE(absl::EndsWith(ended.message(),
                             subscriber->last_async_error().message()))
      << ended << " / " << subscriber->last_async_error();
  // The other still receives.
  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
  const std::string topic = kept == a.get() ? "a.x" : "b.x";
  SIFT_ASSERT_OK(publisher->PublishConfirmed(topic, "still here"));
  SIFT_ASSERT_OK_AND_ASSIGN(Message m, kept->Next(absl::Seconds(10)));
  EXPECT_EQ(m.payload(), "still here");
}

// A restarted broker numbers its deliveries from 1 again: an ack of a
// message received before the restart would acknowledge another one. The
// client refuses it (UNKNOWN_DELIVERY) instead of sending it.
TEST_F(ReconnectTest, AcksOfAnEarlierSessionAreRefusedNotSent) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto worker, NewClient("worker"));
  SubscribeOptions options;
  options.ack = AckOptions{};
  SIFT_ASSERT_OK_AND_ASSIGN(auto sub, worker->Subscribe("jobs.>", options));
  std::vector<Message> old;
  {
    SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
    for (int i = 0; i < 5; ++i) {
      SIFT_ASSERT_OK(publisher->PublishConfirmed("jobs.x",
                                                 absl::StrCat("old", i)));
    }
    for (int i = 0; i < 5; ++i) {
      SIFT_ASSERT_OK_AND_ASSIGN(Message m, sub->Next(absl::Seconds(10)));
      old.push_back(std::move(m));
    }
  }
  SIFT_ASSERT_OK(worker->Ack(old[0]));  // queued, maybe not sent yet
  const uint64_t reconnects_before = worker->reconnects();
  RestartBroker();
  for (int i = 0; i < kMaxAttempts && worker->reconnects() == reconnects_before;
       ++i) {
    absl::SleepFor(kAttemptWait / 4);
  }
  ASSERT_GT(worker->reconnects(), reconnects_before);

  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher2"));
  std::vector<Message> fresh;
  for (int i = 0; i < 5; ++i) {
    SIFT_ASSERT_OK(publisher->PublishConfirmed("jobs.x",
                                               absl::StrCat("new", i)));
    SIFT_ASSERT_OK_AND_ASSIGN(Message m, sub->Next(absl::Seconds(10)));
    EXPECT_EQ(m.payload(), absl::StrCat("new", i));
    fresh.push_back(std::move(m));
  }
  for (size_t i = 0; i < old.size(); ++i) {
    // The same ids in the new session.
    EXPECT_EQ(fresh[i].delivery_id(), old[i].delivery_id());
  }
  for (size_t i = 1; i < old.size(); ++i) {
    const absl::Status ack = worker->Ack(old[i]);
    EXPECT_TRUE(absl::IsNotFound(ack)) << ack;
    EXPECT_NE(ack.message().find("earlier session"), absl::string_view::npos)
        << ack;
    EXPECT_TRUE(absl::IsNotFound(worker->Nack(old[i])));
    EXPECT_TRUE(absl::IsNotFound(worker->InProgress(old[i])));
    EXPECT_TRUE(absl::IsNotFound(worker->AckSync(old[i])));
  }
  // None of the new deliveries was acknowledged by them: each acks once.
  for (const Message& m : fresh) SIFT_EXPECT_OK(worker->AckSync(m));
}

TEST_F(ReconnectTest, SurvivesTwoRestartsAndKeepsAllSubscriptions) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto subscriber, NewClient("subscriber"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto a, subscriber->Subscribe("a.*"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto b, subscriber->Subscribe("b.>"));
  SubscribeOptions grouped;
  grouped.queue_group = "g";
  SIFT_ASSERT_OK_AND_ASSIGN(auto c, subscriber->Subscribe("c", grouped));
  // Unsubscribed before the restart: must not come back.
  SIFT_ASSERT_OK_AND_ASSIGN(auto gone, subscriber->Subscribe("gone"));
  SIFT_ASSERT_OK(gone->Unsubscribe());

  for (int round = 1; round <= 2; ++round) {
    SCOPED_TRACE(absl::StrCat("restart ", round));
    const uint64_t reconnects_before = subscriber->reconnects();
    RestartBroker();
    SIFT_ASSERT_OK_AND_ASSIGN(auto publisher,
                              NewClient(absl::StrCat("publisher", round)));
    EXPECT_FALSE(PublishUntilReceived(*publisher, *a, "a.x", "a-").empty());
    // Once one resubscription is visible the others were sent with it; a
    // confirmed publish per pattern is then delivered.
    SIFT_ASSERT_OK(publisher->PublishConfirmed("b.y.z", "b"));
    SIFT_ASSERT_OK(publisher->PublishConfirmed("c", "c"));
    SIFT_ASSERT_OK_AND_ASSIGN(Message mb, b->Next(absl::Seconds(10)));
    EXPECT_EQ(mb.payload(), "b");
    SIFT_ASSERT_OK_AND_ASSIGN(Message mc, c->Next(absl::Seconds(10)));
    EXPECT_EQ(mc.payload(), "c");
    EXPECT_GT(subscriber->reconnects(), reconnects_before);
    for (int i = 0; i < kMaxAttempts && a->Next(absl::Milliseconds(20)).ok();
         ++i) {
    }
    // Exactly the three live subscriptions were restored (plus whatever the
    // publisher holds itself: none). The "gone" one was not.
    SIFT_ASSERT_OK(publisher->PublishConfirmed("gone", "x"));
    SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats stats, publisher->Stats());
    EXPECT_GE(Drops(stats, "no_subscribers"), 1u) << stats.DebugString();
  }
}

TEST_F(ReconnectTest, PublishesWhileDisconnectedAreSentAfterReconnect) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto client, NewClient("client"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto self_sub, client->Subscribe("queued.>"));
  SIFT_ASSERT_OK(siftd_->Stop());
  EXPECT_EQ(siftd_->exit_code().value_or(-1000), 0);
  // The broker is down: these wait in the client (max_pending), they are not
  // dropped.
  constexpr int kQueued = 10;
  for (int i = 0; i < kQueued; ++i) {
    SIFT_ASSERT_OK(client->Publish("queued.msg", absl::StrCat(i)));
  }
  SIFT_ASSERT_OK(siftd_->Restart());
  // The client resubscribes before it flushes what it queued, so its own
  // subscription receives every queued message, in order.
  for (int i = 0; i < kQueued; ++i) {
    absl::StatusOr<Message> msg = self_sub->Next(absl::Seconds(20));
    ASSERT_TRUE(msg.ok()) << "queued message " << i << ": " << msg.status();
    EXPECT_EQ(msg->payload(), absl::StrCat(i));
  }
}

// A STATS sent, then siftd killed: the answer can never come, and Stats()
// says so when the connection drops, not after its timeout.
TEST_F(ReconnectTest, StatsInFlightWhenTheBrokerIsKilledFailsAtOnce) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto client, NewClient("stats"));
  SIFT_ASSERT_OK(client->Stats());
  Freeze();
  std::future<Outcome> stats =
      InFlight([&] { return client->Stats(kLongTimeout); });
  absl::SleepFor(kToSend);
  Kill();
  ExpectLost(Result(stats), "Stats");

  // The next siftd answers.
  SIFT_ASSERT_OK(siftd_->Restart());
  SIFT_ASSERT_OK(client->Stats(kLongTimeout));
}

// Confirmed publishes sent, then siftd killed: PublishConfirmedAsync's
// `done` and PublishConfirmed get Unavailable at once; the message may or
// may not have been routed or stored.
TEST_F(ReconnectTest,
       ConfirmedPublishesInFlightWhenTheBrokerIsKilledFailAtOnce) {
  // Declared before the client: its `done` may run until the client is gone.
  std::promise<Outcome> async_done;
  std::future<Outcome> async_outcome = async_done.get_future();
  SIFT_ASSERT_OK_AND_ASSIGN(auto client, NewClient("confirms"));
  SIFT_ASSERT_OK(client->PublishConfirmed("orders.warm", "up"));
  Freeze();
  const absl::Time start = absl::Now();
  SIFT_ASSERT_OK(client->PublishConfirmedAsync(
      "orders.async", "a", PublishOptions{},
      [&async_done, start](absl::Status status, const PublishAck&) {
        async_done.set_value(Outcome{std::move(status), absl::Now() - start});
      },
      kLongTimeout));
  std::future<Outcome> sync = InFlight([&] {
    return client->PublishConfirmed("orders.sync", "s", kLongTimeout);
  });
  absl::SleepFor(kToSend);
  Kill();
  const Outcome async = Result(async_outcome);
  ExpectLost(async, "PublishConfirmedAsync");
  EXPECT_NE(async.status.message().find("may or may not have been"),
            absl::string_view::npos)
      << async.status;
  ExpectLost(Result(sync), "PublishConfirmed");
}

// Every other call that waits for an answer, its request sent when siftd
// dies, fails the same way; Unsubscribe() succeeds (the next session does
// not hold the subscription). A Subscribe() among them leaves no
// subscription behind once the client has a new session; the subscriptions
// it held are all made again.
TEST_F(ReconnectTest, EveryCallInFlightWhenTheBrokerIsKilledEndsAtOnce) {
  siftd_ = StartSiftdWithStreams();
  ASSERT_NE(siftd_, nullptr);
  SIFT_ASSERT_OK_AND_ASSIGN(auto client, NewClient("waiter"));
  StreamConfig jobs;
  jobs.name = "jobs";
  jobs.subjects = {"jobs.>"};
  SIFT_ASSERT_OK(client->AddStream(jobs));
  SubscribeOptions acked;
  acked.ack = AckOptions{};
  SIFT_ASSERT_OK_AND_ASSIGN(auto work, client->Subscribe("work.>", acked));
  SIFT_ASSERT_OK_AND_ASSIGN(auto gone, client->Subscribe("gone.>"));
  SIFT_ASSERT_OK(client->PublishConfirmed("work.x", "w"));
  SIFT_ASSERT_OK_AND_ASSIGN(Message delivery, work->Next(absl::Seconds(10)));
  // Makes the client's inbox: no one answers this one.
  EXPECT_FALSE(
      client->Request("nobody.home", "?", absl::Milliseconds(100)).ok());

  Freeze();
  std::vector<std::pair<std::string, std::future<Outcome>>> calls;
  calls.emplace_back("Flush",
                     InFlight([&] { return client->Flush(kLongTimeout); }));
  calls.emplace_back("Request", InFlight([&] {
                       return client->Request("svc.price", "sku", kLongTimeout);
                     }));
  calls.emplace_back("AckSync", InFlight([&] {
                       return client->AckSync(delivery, kLongTimeout);
                     }));
  calls.emplace_back("ListStreams", InFlight([&] {
                       return client->ListStreams(kLongTimeout);
                     }));
  calls.emplace_back("Declare", InFlight([&] {
                       return client->Declare("tasks.>", "workers", {},
                                              kLongTimeout);
                     }));
  calls.emplace_back("Fetch", InFlight([&] {
                       FetchOptions fetch;
                       fetch.start.stream = "jobs";
                       return client->Fetch(fetch, kLongTimeout);
                     }));
  calls.emplace_back("Subscribe", InFlight([&] {
                       SubscribeOptions options;
                       options.timeout = kLongTimeout;
                       return client->Subscribe("late.>", options);
                     }));
  std::future<Outcome> unsubscribe =
      InFlight([&] { return gone->Unsubscribe(); });
  absl::SleepFor(kToSend);
  Kill();
  for (auto& [what, call] : calls) ExpectLost(Result(call), what);
  // Not at its timeout (the client's connect_timeout, 10 s).
  const Outcome unsubscribed = Result(unsubscribe);
  SIFT_EXPECT_OK(unsubscribed.status);
  EXPECT_LT(unsubscribed.took, absl::Seconds(5));

  // On the next siftd the client holds exactly what it held before the
  // calls: the ack subscription and its inbox; not "late.>", not "gone.>".
  SIFT_ASSERT_OK(siftd_->Restart());
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats stats, client->Stats(kLongTimeout));
  EXPECT_EQ(stats.subscriptions(), 2u) << stats.DebugString();
  SIFT_ASSERT_OK(client->PublishConfirmed("work.y", "again"));
  SIFT_ASSERT_OK_AND_ASSIGN(Message again, work->Next(absl::Seconds(10)));
  EXPECT_EQ(again.payload(), "again");
}

// Requests the client has not sent when the connection drops are not
// failed: they wait, and go out on the next session. A Subscribe() among
// them is made once (the client resubscribes it with the others, and its
// own SUB then finds it in place): subscribed.
TEST_F(ReconnectTest, CallsMadeWhileTheBrokerIsDownGoOutOnTheNextSession) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto client, NewClient("patient"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto sub, client->Subscribe("later.>"));
  SIFT_ASSERT_OK(siftd_->Stop());
  // The client sees the connection close at once; give it a moment anyway,
  // so that the calls below are queued, not sent to the closing connection.
  absl::SleepFor(absl::Milliseconds(300));
  std::future<Outcome> stats =
      InFlight([&] { return client->Stats(kLongTimeout); });
  std::future<Outcome> confirmed = InFlight([&] {
    return client->PublishConfirmed("later.x", "queued", kLongTimeout);
  });
  std::unique_ptr<Subscription> queued_sub;
  std::future<Outcome> subscribed = InFlight([&] {
    SubscribeOptions options;
    options.timeout = kLongTimeout;
    absl::StatusOr<std::unique_ptr<Subscription>> made =
        client->Subscribe("queued.>", options);
    if (made.ok()) queued_sub = *std::move(made);
    return made.status();
  });
  absl::SleepFor(kToSend);
  SIFT_ASSERT_OK(siftd_->Restart());
  SIFT_EXPECT_OK(Result(stats).status);
  SIFT_EXPECT_OK(Result(confirmed).status);
  SIFT_EXPECT_OK(Result(subscribed).status);
  SIFT_ASSERT_OK_AND_ASSIGN(Message m, sub->Next(absl::Seconds(10)));
  EXPECT_EQ(m.payload(), "queued");
  ASSERT_NE(queued_sub, nullptr);
  SIFT_ASSERT_OK(client->PublishConfirmed("queued.y", "made"));
  SIFT_ASSERT_OK_AND_ASSIGN(Message made, queued_sub->Next(absl::Seconds(10)));
  EXPECT_EQ(made.payload(), "made");
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats stats_now, client->Stats());
  EXPECT_EQ(stats_now.subscriptions(), 2u) << stats_now.DebugString();
}

// Acks of deliveries whose session ended with the connection (siftd
// killed, not back) are refused at once, not after their timeout: AckSync
// says "not sent" (HELLO_REQUIRED), Ack NotFound (UNKNOWN_DELIVERY). No
// later session could apply them (a delivery id is its session's). Before,
// AckSync waited out its timeout for a session, and `sift sub --ack`
// printed what it held one message per --connect_timeout.
TEST_F(ReconnectTest, AcksAfterTheConnectionDroppedAreRefusedAtOnce) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto client, NewClient("acker"));
  SubscribeOptions acked;
  acked.ack = AckOptions{};
  SIFT_ASSERT_OK_AND_ASSIGN(auto work, client->Subscribe("work.>", acked));
  SIFT_ASSERT_OK(client->PublishConfirmed("work.a", "a"));
  SIFT_ASSERT_OK(client->PublishConfirmed("work.b", "b"));
  SIFT_ASSERT_OK_AND_ASSIGN(Message a, work->Next(absl::Seconds(10)));
  SIFT_ASSERT_OK_AND_ASSIGN(Message b, work->Next(absl::Seconds(10)));
  Kill();
  // The client sees the connection close at once; give it a moment.
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(client->FromEarlierSession(a));  // no new session yet
  std::future<Outcome> sync =
      InFlight([&] { return client->AckSync(a, kLongTimeout); });
  const Outcome synced = Result(sync);
  EXPECT_LT(synced.took, kLongTimeout / 2) << synced.status;
  EXPECT_EQ(protocol::WireCodeOf(synced.status), wire::HELLO_REQUIRED)
      << synced.status;
  EXPECT_TRUE(absl::StartsWith(synced.status.message(),
                               "not sent: the session its delivery came in "
                               "has ended"))
      << synced.status;
  const absl::Status fire = client->Ack(b);
  EXPECT_TRUE(absl::IsNotFound(fire)) << fire;
  EXPECT_EQ(protocol::WireCodeOf(fire), wire::UNKNOWN_DELIVERY) << fire;
}

// A broker that holds max_clients sessions refuses a new HELLO with
// TOO_MANY_CLIENTS. A client whose HELLO after a lost connection is refused
// so says HELLO again (with backoff) until there is room, then gets a
// session and its subscriptions back; a call made meanwhile waits. Here
// siftd holds two sessions with max_clients 2 while the client's new
// connection still fits: another client's and the one that keeps a
// declared work queue (DECLARE), which is not a connection.
TEST_F(ReconnectTest, AHelloRefusedForLackOfRoomIsRetried) {
  siftd_ = StartSiftd({"--max_clients=2"});
  ASSERT_NE(siftd_, nullptr);
  SIFT_ASSERT_OK_AND_ASSIGN(auto client, NewClient("refused"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto sub, client->Subscribe("news.>"));
  RawDealer other(siftd_->endpoint());
  absl::StatusOr<wire::Header> welcome = other.Hello();
  ASSERT_TRUE(welcome.ok() && welcome->has_welcome());
  SIFT_ASSERT_OK(client->Declare("jobs.>", "workers"));
  const uint64_t reconnects_before = client->reconnects();

  // The client loses its connection: siftd frozen past ZeroMQ's heartbeat
  // timeout (3 s), which a pending call shows. (`other` sends no
  // heartbeats: its connection and session stay.)
  Freeze();
  std::future<Outcome> stats =
      InFlight([&] { return client->Stats(kLongTimeout); });
  ExpectLost(Result(stats), "Stats");
  Thaw();
  // Its next connection is admitted once the old one's close is seen, and
  // its HELLO refused: the broker holds two sessions.
  ASSERT_TRUE(siftd_->WaitForLog("TOO_MANY_CLIENTS", kLongTimeout));
  std::future<Outcome> confirmed = InFlight([&] {
    return client->PublishConfirmed("news.back", "back", kLongTimeout);
  });
  absl::SleepFor(kToSend);
  other.CloseNow();  // room for one session again

  const Outcome back = Result(confirmed);
  SIFT_ASSERT_OK(back.status);
  EXPECT_LT(back.took, kLongTimeout / 2);
  SIFT_ASSERT_OK_AND_ASSIGN(Message m, sub->Next(absl::Seconds(10)));
  EXPECT_EQ(m.payload(), "back");
  EXPECT_GT(client->reconnects(), reconnects_before);
}

// Connect()'s HELLO is retried as well: refused for lack of room
// (TOO_MANY_CLIENTS), it is said again with backoff until there is room,
// within the connect timeout; a broker full for all of it fails Connect()
// with ResourceExhausted saying so, and for how long. Here siftd
// (max_clients 2) holds a client's session and the one that keeps that
// client's declared work queue, while a new connection still fits.
TEST_F(ReconnectTest, AFirstHelloRefusedForLackOfRoomIsRetried) {
  siftd_ = StartSiftd({"--max_clients=2"});
  ASSERT_NE(siftd_, nullptr);
  SIFT_ASSERT_OK_AND_ASSIGN(auto holder, NewClient("holder"));
  SIFT_ASSERT_OK(holder->Declare("jobs.>", "workers"));
  ClientOptions options;
  options.endpoint = siftd_->endpoint();
  options.name = "late";

  // Full for all of the connect timeout.
  options.connect_timeout = absl::Seconds(2);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<Client>> full = Client::Connect(options);
  const absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(full.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(full.status())) << full.status();
  EXPECT_EQ(protocol::WireCodeOf(full.status()), wire::TOO_MANY_CLIENTS)
      << full.status();
  EXPECT_TRUE(absl::StrContains(full.status().message(), "lack of room"))
      << full.status();
  EXPECT_TRUE(absl::StrContains(full.status().message(),
                                "throughout the connect timeout of 2s"))
      << full.status();
  EXPECT_GE(took, options.connect_timeout);
  EXPECT_LT(took, options.connect_timeout + absl::Seconds(5));

  // Room comes while it tries: it gets a session.
  auto refusals = [&] {
    const std::string log = siftd_->ReadLog();
    size_t n = 0;
    for (size_t at = log.find("TOO_MANY_CLIENTS"); at != std::string::npos;
         at = log.find("TOO_MANY_CLIENTS", at + 1)) {
      ++n;
    }
    return n;
  };
  const size_t refused_before = refusals();
  EXPECT_GT(refused_before, 1u) << "the first HELLO was not retried";
  options.connect_timeout = kLongTimeout;
  auto connecting = std::async(std::launch::async, [options] {
    const absl::Time start = absl::Now();
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
    return std::make_pair(std::move(client), absl::Now() - start);
  });
  const absl::Time deadline = absl::Now() + kLongTimeout;
  while (refusals() == refused_before && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_GT(refusals(), refused_before);
  holder->Close();  // room for one session again
  ASSERT_EQ(connecting.wait_for(absl::ToChronoNanoseconds(2 * kLongTimeout)),
            std::future_status::ready);
  auto [late, connect_took] = connecting.get();
  SIFT_ASSERT_OK(late.status());
  EXPECT_LT(connect_took, kLongTimeout / 2);
  SIFT_ASSERT_OK((*late)->PublishConfirmed("news.late", "in", kLongTimeout));
}

// ClientOptions::reconnect false: when siftd is killed the client ends for
// good. It does not connect to the siftd started next on the same port (no
// connection, no session, no subscription there), while a client with
// reconnect on does. A call waiting for an answer fails at once with
// Unavailable naming the cause; so do later calls that need the broker; a
// subscription's Next() returns what was queued, then that error.
TEST_F(ReconnectTest, WithoutReconnectTheClientEndsWhenTheBrokerIsKilled) {
  // Declared before the client: its callback may run until the client is
  // gone.
  std::atomic<int> pushed_count{0};
  SIFT_ASSERT_OK_AND_ASSIGN(auto once, NewClient("once", /*reconnect=*/false));
  SIFT_ASSERT_OK_AND_ASSIGN(auto control, NewClient("control"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto sub, once->Subscribe("news.>"));
  SubscribeOptions with_callback;
  with_callback.callback = [&pushed_count](const Message&) { ++pushed_count; };
  SIFT_ASSERT_OK_AND_ASSIGN(auto pushed,
                            once->Subscribe("pushed.>", with_callback));
  SIFT_ASSERT_OK_AND_ASSIGN(auto control_sub, control->Subscribe("control.>"));
  // Queued in `sub`, not taken yet: Next() still returns it after the end.
  // It is there once the callback has seen what was published after it (in
  // order, from one publisher).
  SIFT_ASSERT_OK(control->PublishConfirmed("news.before", "before"));
  SIFT_ASSERT_OK(control->PublishConfirmed("pushed.after", "after"));
  for (int i = 0; i < kMaxAttempts && pushed_count.load() == 0; ++i) {
    absl::SleepFor(kAttemptWait / 4);
  }
  ASSERT_EQ(pushed_count.load(), 1);

  Freeze();
  std::future<Outcome> stats =
      InFlight([&] { return once->Stats(kLongTimeout); });
  absl::SleepFor(kToSend);
  const uint64_t control_reconnects = control->reconnects();
  Kill();
  const Outcome in_flight = Result(stats);
  EXPECT_TRUE(absl::IsUnavailable(in_flight.status)) << in_flight.status;
  EXPECT_NE(in_flight.status.message().find(
                "lost the connection to the broker (ClientOptions::reconnect "
                "is false)"),
            absl::string_view::npos)
      << in_flight.status;
  EXPECT_NE(in_flight.status.message().find("may or may not have been"),
            absl::string_view::npos)
      << in_flight.status;
  EXPECT_LT(in_flight.took, kLongTimeout / 2);

  SIFT_ASSERT_OK(siftd_->Restart());
  for (int i = 0; i < kMaxAttempts && control->reconnects() == control_reconnects;
       ++i) {
    absl::SleepFor(kAttemptWait / 4);
  }
  ASSERT_GT(control->reconnects(), control_reconnects);
  EXPECT_FALSE(
      PublishUntilReceived(*control, *control_sub, "control.x", "c-").empty());
  // Longer than ZeroMQ's longest reconnect interval (1 s) plus a HELLO: a
  // client that reconnects has done so by now.
  absl::SleepFor(absl::Seconds(2));
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats on_new, control->Stats(kLongTimeout));
  EXPECT_EQ(on_new.clients(), 1u) << on_new.DebugString();
  EXPECT_EQ(on_new.connections(), 1u) << on_new.DebugString();
  EXPECT_EQ(on_new.subscriptions(), 1u) << on_new.DebugString();
  EXPECT_EQ(once->reconnects(), 0u);

  auto expect_ended = [](const absl::Status& status, const std::string& what,
                         absl::Duration took) {
    SCOPED_TRACE(what);
    EXPECT_TRUE(absl::IsUnavailable(status)) << status;
    EXPECT_NE(status.message().find("(ClientOptions::reconnect is false)"),
              absl::string_view::npos)
        << status;
    EXPECT_LT(took, absl::Seconds(1));
  };
  auto timed = [](auto call) {
    const absl::Time start = absl::Now();
    absl::Status status = AsStatus(call());
    return std::make_pair(std::move(status), absl::Now() - start);
  };
  {
    auto [status, took] = timed([&] { return once->Stats(kLongTimeout); });
    expect_ended(status, "Stats", took);
  }
  {
    auto [status, took] = timed([&] { return once->Publish("news.x", "x"); });
    expect_ended(status, "Publish", took);
  }
  {
    auto [status, took] = timed([&] {
      return once->PublishConfirmed("news.x", "x", kLongTimeout);
    });
    expect_ended(status, "PublishConfirmed", took);
  }
  {
    auto [status, took] = timed([&] {
      SubscribeOptions options;
      options.timeout = kLongTimeout;
      return once->Subscribe("late.>", options);
    });
    expect_ended(status, "Subscribe", took);
  }
  {
    auto [status, took] = timed([&] {
      return once->Request("svc.price", "sku", kLongTimeout);
    });
    expect_ended(status, "Request", took);
  }
  SIFT_ASSERT_OK_AND_ASSIGN(Message before, sub->Next(absl::Seconds(10)));
  EXPECT_EQ(before.payload(), "before");
  for (int i = 0; i < 2; ++i) {
    auto [status, took] = timed([&] { return sub->Next(kLongTimeout); });
    expect_ended(status, "Next", took);
    EXPECT_NE(status.message().find("subscription ended"),
              absl::string_view::npos)
        << status;
  }
  // Nothing reaches the callback subscription any more.
  SIFT_ASSERT_OK(control->PublishConfirmed("pushed.later", "later"));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(pushed_count.load(), 1);
  // The subscriptions are gone already: unsubscribing is done.
  SIFT_EXPECT_OK(sub->Unsubscribe());
  SIFT_EXPECT_OK(pushed->Unsubscribe());

  const absl::Time close_start = absl::Now();
  once->Close();
  EXPECT_LT(absl::Now() - close_start, absl::Seconds(1));
  EXPECT_TRUE(absl::IsFailedPrecondition(once->Publish("news.x", "x")));
}

}  // namespace
}  // namespace sift::test
