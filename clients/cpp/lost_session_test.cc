// What becomes of the calls waiting for the broker's answer when the broker
// loses the client's session (here: it answers HELLO_REQUIRED, and WELCOMEs
// the client's new HELLO), against a scripted fake broker (fake_broker.h):
// every call whose request went to the ended session fails at once with
// Unavailable instead of waiting out its timeout, an Unsubscribe() is done,
// and a Subscribe() among them is not made again in the new session; what
// was still queued goes out in the new session and is answered there (a call
// whose timeout comes first takes its request back: not sent), and a
// Request() made while there is no session waits for the next one, whose
// inbox gets its reply. A connection that drops (siftd killed) is exercised by
// tests/reconnect_test.cc. With ClientOptions::reconnect false there is no
// new session: the client ends, and every call fails with Unavailable.
#include <atomic>
#include <cstddef>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/protocol/codec.h"
#include "clients/cpp/call_in_flight.h"
#include "clients/cpp/client.h"
#include "clients/cpp/fake_broker.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"

namespace sift {
namespace {

using test::Answer;
using test::InFlight;
using test::Outcome;
using test::ResultWithin;
using test::ConnectTo;
using test::DeliverOf;
using test::ErrorFor;
using test::FakeBroker;
using test::OkFor;
using test::Out;

// Long, so that a call ending in less than half of it cannot have timed out.
constexpr absl::Duration kLongTimeout = absl::Seconds(20);

// The outcome of a call InFlight (call_in_flight.h), waiting for it at most
// 2 * kLongTimeout.
Outcome Result(std::future<Outcome>& call) {
  return ResultWithin(call, 2 * kLongTimeout);
}

// The `done` calls of PublishConfirmedAsync, by topic.
class Outcomes {
 public:
  struct Call {
    std::string topic;
    absl::Status status;
  };
  PublishDone Done(std::string topic) {
    return [this, topic](absl::Status s, const PublishAck&) {
      absl::MutexLock lock(&mu_);
      calls_.push_back({topic, std::move(s)});
    };
  }
  std::vector<Call> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  // Waits up to 5 s for `n` calls; returns them all.
  std::vector<Call> WaitFor(size_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (calls().size() < n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    return calls();
  }

 private:
  absl::Mutex mu_;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
};

// Answers SUBs, except those of "pending.>"; answers nothing else, except
// STATS once `lose_session` is set: HELLO_REQUIRED, as a broker that lost
// the session (a restart, a timeout) does.
FakeBroker::Handler Script(const std::atomic<bool>& lose_session) {
  return [&lose_session](const wire::Header& h) -> std::vector<Out> {
    if (h.has_sub() && h.request_id() != 0 &&
        h.sub().pattern() != "pending.>") {
      return {Answer(OkFor(h.request_id()))};
    }
    if (h.has_stats() && lose_session) {
      return {Answer(ErrorFor(h.request_id(), wire::HELLO_REQUIRED))};
    }
    return {};
  };
}

TEST(LostSessionTest, CallsSentToALostSessionFailAtOnce) {
  std::atomic<bool> lose_session{false};
  FakeBroker broker(Script(lose_session));
  // Declared before the client: its `done` may run until the client is gone.
  std::promise<Outcome> async_done;
  std::future<Outcome> async_outcome = async_done.get_future();
  auto client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);

  SubscribeOptions acked;
  acked.ack = AckOptions{};
  auto work = client->Subscribe("work.>", acked);
  ASSERT_TRUE(work.ok()) << work.status();
  auto gone = client->Subscribe("gone.>");
  ASSERT_TRUE(gone.ok()) << gone.status();
  broker.Push(DeliverOf((*work)->sid(), "work.x", "w", 0, 0,
                        /*delivery_id=*/7));
  absl::StatusOr<Message> delivery = (*work)->Next(absl::Seconds(5));
  ASSERT_TRUE(delivery.ok()) << delivery.status();

  std::vector<std::pair<std::string, std::future<Outcome>>> calls;
  calls.emplace_back("Stats",
                     InFlight([&] { return client->Stats(kLongTimeout); }));
  calls.emplace_back("PublishConfirmed", InFlight([&] {
                       return client->PublishConfirmed("orders.a", "x",
                                                       kLongTimeout);
                     }));
  calls.emplace_back("Request", InFlight([&] {
                       return client->Request("svc.price", "sku", kLongTimeout);
                     }));
  calls.emplace_back("AckSync", InFlight([&] {
                       return client->AckSync(*delivery, kLongTimeout);
                     }));
  calls.emplace_back("ListStreams", InFlight([&] {
                       return client->ListStreams(kLongTimeout);
                     }));
  calls.emplace_back("Fetch", InFlight([&] {
                       FetchOptions fetch;
                       fetch.start.stream = "jobs";
                       return client->Fetch(fetch, kLongTimeout);
                     }));
  calls.emplace_back("Subscribe", InFlight([&] {
                       SubscribeOptions options;
                       options.timeout = kLongTimeout;
                       return client->Subscribe("pending.>", options);
                     }));
  const absl::Time start = absl::Now();
  ASSERT_TRUE(client
                  ->PublishConfirmedAsync(
                      "orders.b", "y", PublishOptions{},
                      [&async_done, start](absl::Status s, const PublishAck&) {
                        async_done.set_value(
                            Outcome{std::move(s), absl::Now() - start});
                      },
                      kLongTimeout)
                  .ok());
  std::future<Outcome> unsubscribe =
      InFlight([&] { return (*gone)->Unsubscribe(); });

  // Every request has reached the broker before it loses the session.
  auto sent = [&](auto pred) { return broker.WaitFor(pred).has_value(); };
  ASSERT_TRUE(sent([](const wire::Header& h) { return h.has_stats(); }));
  ASSERT_TRUE(sent([](const wire::Header& h) {
    return h.has_pub() && h.pub().topic() == "orders.a";
  }));
  ASSERT_TRUE(sent([](const wire::Header& h) {
    return h.has_pub() && h.pub().topic() == "orders.b";
  }));
  ASSERT_TRUE(sent([](const wire::Header& h) {
    return h.has_pub() && h.pub().topic() == "svc.price";
  }));
  ASSERT_TRUE(sent([](const wire::Header& h) {
    return h.has_ack() && h.request_id() != 0;
  }));
  ASSERT_TRUE(sent([](const wire::Header& h) { return h.has_stream(); }));
  ASSERT_TRUE(sent([](const wire::Header& h) { return h.has_fetch(); }));
  ASSERT_TRUE(sent([](const wire::Header& h) {
    return h.has_sub() && h.sub().pattern() == "pending.>";
  }));
  ASSERT_TRUE(sent([](const wire::Header& h) { return h.has_unsub(); }));

  lose_session = true;
  const absl::Status refused = client->Stats(kLongTimeout).status();
  EXPECT_EQ(protocol::WireCodeOf(refused), wire::HELLO_REQUIRED) << refused;
  EXPECT_TRUE(absl::IsUnavailable(refused)) << refused;

  for (auto& [what, call] : calls) {
    SCOPED_TRACE(what);
    const Outcome outcome = Result(call);
    EXPECT_TRUE(absl::IsUnavailable(outcome.status)) << outcome.status;
    EXPECT_NE(
        outcome.status.message().find("connection to the broker was lost"),
        absl::string_view::npos)
        << outcome.status;
    EXPECT_LT(outcome.took, kLongTimeout / 2);
  }
  const Outcome async = Result(async_outcome);
  EXPECT_TRUE(absl::IsUnavailable(async.status)) << async.status;
  EXPECT_NE(async.status.message().find("may or may not have been"),
            absl::string_view::npos)
      << async.status;
  EXPECT_LT(async.took, kLongTimeout / 2);
  // The new session does not hold the subscription: unsubscribed.
  const Outcome unsubscribed = Result(unsubscribe);
  EXPECT_TRUE(unsubscribed.status.ok()) << unsubscribed.status;

  // The new session gets the subscriptions the client holds (the inbox
  // under its new prefix), not the one whose Subscribe() failed.
  EXPECT_GE(broker.hellos(), 2);
  auto subs_for = [&](const std::string& pattern) {
    return [pattern](const wire::Header& h) {
      return h.has_sub() && h.sub().pattern() == pattern;
    };
  };
  EXPECT_TRUE(broker.WaitForNth(1, subs_for("work.>")).has_value());
  // The inbox's first SUB, under the new prefix.
  EXPECT_TRUE(broker.WaitForNth(0, subs_for("_INBOX.c2.>")).has_value());
  EXPECT_EQ(broker.Count(subs_for("pending.>")), 1u);  // the one refused
  EXPECT_EQ(broker.Count(subs_for("gone.>")), 1u);     // unsubscribed
}

// What the client has not sent when the session ends is not failed: it
// goes out in the next session and is answered there. Here the client
// learns of the end from HELLO_REQUIRED, and the test holds back the
// WELCOME to its new HELLO while it queues confirmed publishes (batched:
// found in their BATCH) and a Flush().
TEST(LostSessionTest, RequestsQueuedWhenTheSessionEndsGoOutInTheNext) {
  std::atomic<bool> lose_session{false};
  FakeBroker broker(Script(lose_session));
  broker.set_max_batch_bytes(1 << 20);
  std::promise<Outcome> sent_done;
  std::future<Outcome> sent_outcome = sent_done.get_future();
  Outcomes queued;
  auto client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);

  const absl::Time start = absl::Now();
  ASSERT_TRUE(
      client
          ->PublishConfirmedAsync(
              "sent.a", "a", PublishOptions{},
              [&sent_done, start](absl::Status s, const PublishAck&) {
                sent_done.set_value(Outcome{std::move(s), absl::Now() - start});
              },
              kLongTimeout)
          .ok());
  ASSERT_TRUE(broker
                  .WaitFor([](const wire::Header& h) {
                    return h.has_pub() && h.pub().topic() == "sent.a";
                  })
                  .has_value());

  broker.set_answer_hellos(false);
  lose_session = true;
  EXPECT_EQ(protocol::WireCodeOf(client->Stats(kLongTimeout).status()),
            wire::HELLO_REQUIRED);
  const absl::Time hello_deadline = absl::Now() + absl::Seconds(5);
  while (broker.hellos() < 2 && absl::Now() < hello_deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_EQ(broker.hellos(), 2);

  // No session: these wait in the client.
  for (const char* topic : {"queued.b", "queued.c"}) {
    ASSERT_TRUE(client
                    ->PublishConfirmedAsync(topic, topic, PublishOptions{},
                                            queued.Done(topic), kLongTimeout)
                    .ok());
  }
  std::future<Outcome> flush =
      InFlight([&] { return client->Flush(kLongTimeout); });
  absl::SleepFor(absl::Milliseconds(50));  // Flush() has queued its PING
  lose_session = false;
  broker.Push(Answer(broker.Welcome(broker.last_hello_id(), 2)));

  // The PUB sent in the ended session fails at once; the queued ones are
  // not failed with it (the same sweep would have ended them first).
  const Outcome sent = Result(sent_outcome);
  EXPECT_TRUE(absl::IsUnavailable(sent.status)) << sent.status;
  EXPECT_LT(sent.took, kLongTimeout / 2);
  EXPECT_TRUE(queued.calls().empty());
  const Outcome flushed = Result(flush);
  EXPECT_TRUE(flushed.status.ok()) << flushed.status;
  EXPECT_LT(flushed.took, kLongTimeout / 2);
  for (const char* topic : {"queued.b", "queued.c"}) {
    auto pub = broker.WaitFor([topic](const wire::Header& h) {
      return h.has_pub() && h.pub().topic() == topic;
    });
    ASSERT_TRUE(pub.has_value()) << topic;
    broker.Push(Answer(OkFor(pub->request_id())));
  }
  std::vector<Outcomes::Call> calls = queued.WaitFor(2);
  ASSERT_EQ(calls.size(), 2u);
  for (const Outcomes::Call& call : calls) {
    EXPECT_TRUE(call.status.ok()) << call.topic << ": " << call.status;
  }
}

// A Request() made while the client has no session (it lost it, and the
// WELCOME to its new HELLO has not come yet) waits for the next session and
// goes out there, with a reply_to in that session's inbox, after the inbox
// is subscribed again: it gets its reply. A reply_to made at once would
// name the ended session's inbox, which no reply reaches any more.
TEST(LostSessionTest, ARequestMadeWithoutASessionGoesOutInTheNext) {
  std::atomic<bool> lose_session{false};
  std::atomic<int> session{1};
  std::atomic<uint64_t> inbox_sid{0};
  const FakeBroker::Handler script = Script(lose_session);
  // Replies as siftd routes them: only to the inbox of the current session.
  FakeBroker broker([&](const wire::Header& h) -> std::vector<Out> {
    if (h.has_sub() && absl::StartsWith(h.sub().pattern(), "_INBOX.")) {
      inbox_sid = h.sub().sid();
    }
    if (h.has_pub() &&
        absl::StartsWith(h.pub().reply_to(),
                         absl::StrCat("_INBOX.c", session.load(), "."))) {
      return {DeliverOf(inbox_sid.load(), h.pub().reply_to(), "price", 0, 0)};
    }
    return script(h);
  });
  auto client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<Message> first =
      client->Request("svc.price", "a", kLongTimeout);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->payload(), "price");

  broker.set_answer_hellos(false);
  lose_session = true;
  EXPECT_EQ(protocol::WireCodeOf(client->Stats(kLongTimeout).status()),
            wire::HELLO_REQUIRED);
  const absl::Time hello_deadline = absl::Now() + absl::Seconds(5);
  while (broker.hellos() < 2 && absl::Now() < hello_deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_EQ(broker.hellos(), 2);

  // No session now: the request waits for the next one.
  std::future<Outcome> request =
      InFlight([&] { return client->Request("svc.price", "b", kLongTimeout); });
  absl::SleepFor(absl::Milliseconds(50));
  lose_session = false;
  session = 2;
  broker.Push(Answer(broker.Welcome(broker.last_hello_id(), 2)));
  const Outcome outcome = Result(request);
  EXPECT_TRUE(outcome.status.ok()) << outcome.status;
  EXPECT_LT(outcome.took, kLongTimeout / 2);

  // One PUB per request, the second in the new session's inbox, sent after
  // the inbox's resubscription.
  std::vector<std::string> sent;  // "sub <pattern>" or "pub <reply_to>"
  for (const wire::Header& h : broker.received()) {
    if (h.has_sub() && absl::StartsWith(h.sub().pattern(), "_INBOX.")) {
      sent.push_back(absl::StrCat("sub ", h.sub().pattern()));
    }
    if (h.has_pub() && h.pub().topic() == "svc.price") {
      sent.push_back(absl::StrCat(
          "pub ", h.pub().reply_to().substr(0, h.pub().reply_to().rfind('.'))));
    }
  }
  EXPECT_EQ(sent,
            (std::vector<std::string>{"sub _INBOX.c1.>", "pub _INBOX.c1",
                                      "sub _INBOX.c2.>", "pub _INBOX.c2"}));
}

// A call whose timeout runs out while its request is still queued, because
// the client has had no session to send it in, says so: Unavailable (wire
// code HELLO_REQUIRED) "not sent", not DeadlineExceeded (which leaves open
// whether the broker did it). Its request is taken out of the queue: the
// next session does not get it. An AckSync's ACK so, and a Stats.
TEST(LostSessionTest, ACallStillQueuedAtItsTimeoutWasNotSent) {
  std::atomic<bool> lose_session{false};
  FakeBroker broker(Script(lose_session));
  auto client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);
  SubscribeOptions acked;
  acked.ack = AckOptions{};
  auto work = client->Subscribe("work.>", acked);
  ASSERT_TRUE(work.ok()) << work.status();
  broker.Push(DeliverOf((*work)->sid(), "work.x", "w", 0, 0,
                        /*delivery_id=*/7));
  absl::StatusOr<Message> delivery = (*work)->Next(absl::Seconds(5));
  ASSERT_TRUE(delivery.ok()) << delivery.status();

  broker.set_answer_hellos(false);
  lose_session = true;
  EXPECT_EQ(protocol::WireCodeOf(client->Stats(kLongTimeout).status()),
            wire::HELLO_REQUIRED);
  const absl::Time hello_deadline = absl::Now() + absl::Seconds(5);
  while (broker.hellos() < 2 && absl::Now() < hello_deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_EQ(broker.hellos(), 2);

  // No session: both stay queued until their timeouts.
  constexpr absl::Duration kShort = absl::Milliseconds(300);
  const absl::Status acked_status = client->AckSync(*delivery, kShort);
  const absl::Status stats_status = client->Stats(kShort).status();
  for (const absl::Status& s : {acked_status, stats_status}) {
    EXPECT_TRUE(absl::IsUnavailable(s)) << s;
    EXPECT_EQ(protocol::WireCodeOf(s), wire::HELLO_REQUIRED) << s;
    EXPECT_TRUE(absl::StartsWith(s.message(), "not sent")) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "will not be sent")) << s;
  }

  // The next session gets neither: one STATS in all (the one refused).
  lose_session = false;
  broker.Push(Answer(broker.Welcome(broker.last_hello_id(), 2)));
  ASSERT_TRUE(client->Flush(kLongTimeout).ok());
  int stats = 0;
  for (const wire::Header& h : broker.received()) {
    EXPECT_FALSE(h.has_ack()) << h.DebugString();
    if (h.has_stats()) ++stats;
  }
  EXPECT_EQ(stats, 1);
}

// ClientOptions::reconnect false: HELLO_REQUIRED on a live connection ends
// the client. It says no HELLO again; what waits for an answer fails at once
// with Unavailable naming the cause, as do later calls; a subscription's
// Next() returns what was queued, then that error; a callback subscription
// gets nothing more; Close() is prompt.
TEST(LostSessionTest, WithoutReconnectALostSessionEndsTheClient) {
  std::atomic<bool> lose_session{false};
  FakeBroker broker(Script(lose_session));
  std::promise<Outcome> async_done;
  std::future<Outcome> async_outcome = async_done.get_future();
  std::atomic<int> callbacks{0};
  ClientOptions options = broker.Options();
  options.reconnect = false;
  absl::StatusOr<std::unique_ptr<Client>> connected = Client::Connect(options);
  ASSERT_TRUE(connected.ok()) << connected.status();
  std::unique_ptr<Client> client = *std::move(connected);

  auto sub = client->Subscribe("work.>");
  ASSERT_TRUE(sub.ok()) << sub.status();
  SubscribeOptions with_callback;
  with_callback.callback = [&callbacks](const Message&) { ++callbacks; };
  auto pushed = client->Subscribe("pushed.>", with_callback);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  broker.Push(DeliverOf((*sub)->sid(), "work.x", "queued", 0, 0));
  broker.Push(DeliverOf((*pushed)->sid(), "pushed.x", "p", 0, 0));
  const absl::Time delivered_by = absl::Now() + absl::Seconds(5);
  while (callbacks.load() == 0 && absl::Now() < delivered_by) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_EQ(callbacks.load(), 1);

  // Sent, never answered by the script.
  std::future<Outcome> confirmed = InFlight([&] {
    return client->PublishConfirmed("orders.a", "x", kLongTimeout);
  });
  const absl::Time start = absl::Now();
  ASSERT_TRUE(client
                  ->PublishConfirmedAsync(
                      "orders.b", "y", PublishOptions{},
                      [&async_done, start](absl::Status s, const PublishAck&) {
                        async_done.set_value(
                            Outcome{std::move(s), absl::Now() - start});
                      },
                      kLongTimeout)
                  .ok());
  for (const char* topic : {"orders.a", "orders.b"}) {
    ASSERT_TRUE(broker
                    .WaitFor([topic](const wire::Header& h) {
                      return h.has_pub() && h.pub().topic() == topic;
                    })
                    .has_value())
        << topic;
  }

  lose_session = true;
  const absl::Status refused = client->Stats(kLongTimeout).status();
  EXPECT_EQ(protocol::WireCodeOf(refused), wire::HELLO_REQUIRED) << refused;

  auto expect_ended = [](const absl::Status& status, const std::string& what) {
    SCOPED_TRACE(what);
    EXPECT_TRUE(absl::IsUnavailable(status)) << status;
    EXPECT_NE(status.message().find("the broker lost this client's session "
                                    "(ClientOptions::reconnect is false)"),
              absl::string_view::npos)
        << status;
  };
  const Outcome sync = Result(confirmed);
  expect_ended(sync.status, "PublishConfirmed");
  EXPECT_LT(sync.took, kLongTimeout / 2);
  const Outcome async = Result(async_outcome);
  expect_ended(async.status, "PublishConfirmedAsync");
  EXPECT_NE(async.status.message().find("may or may not have been"),
            absl::string_view::npos)
      << async.status;
  EXPECT_LT(async.took, kLongTimeout / 2);

  // Later calls fail at once, without reaching the broker.
  const size_t received = broker.received().size();
  expect_ended(client->Stats(kLongTimeout).status(), "Stats");
  expect_ended(client->Publish("orders.c", "z"), "Publish");
  expect_ended(client->Flush(kLongTimeout), "Flush");
  SubscribeOptions late;
  late.timeout = kLongTimeout;
  expect_ended(client->Subscribe("late.>", late).status(), "Subscribe");
  expect_ended(client->PublishConfirmedAsync("orders.d", "w", PublishOptions{},
                                             [](absl::Status,
                                                const PublishAck&) {}),
               "PublishConfirmedAsync");
  absl::StatusOr<Message> queued = (*sub)->Next(absl::Seconds(5));
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(queued->payload(), "queued");
  expect_ended((*sub)->Next(kLongTimeout).status(), "Next");

  // No new session (one HELLO in all), nothing more sent; the broker can no
  // longer reach the client's callbacks.
  broker.Push(DeliverOf((*pushed)->sid(), "pushed.y", "p", 0, 0));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(broker.hellos(), 1);
  EXPECT_EQ(broker.received().size(), received);
  EXPECT_EQ(callbacks.load(), 1);
  EXPECT_EQ(client->reconnects(), 0u);

  const absl::Time close_start = absl::Now();
  client->Close();
  EXPECT_LT(absl::Now() - close_start, absl::Seconds(1));
}

}  // namespace
}  // namespace sift
