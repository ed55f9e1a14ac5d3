// Routing through a real siftd: wildcard patterns, overlapping subscriptions
// in one and in several clients (exactly one delivery per matching
// subscription, none otherwise), unsubscribe, and per-publisher ordering.
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "tests/siftd_process.h"
#include "tests/test_util.h"

namespace sift::test {
namespace {

// Generous bound for one delivery to arrive; only reached on failure.
constexpr absl::Duration kDeliveryTimeout = absl::Seconds(10);

class RoutingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto siftd = SiftdProcess::Start();
    ASSERT_TRUE(siftd.ok()) << siftd.status();
    siftd_ = *std::move(siftd);
  }
  void TearDown() override {
    if (HasFailure() && siftd_ != nullptr) {
      std::cerr << "--- siftd log tail ---\n" << siftd_->LogTail() << "\n";
    }
  }

  absl::StatusOr<std::unique_ptr<Client>> NewClient(const std::string& name) {
    ClientOptions options;
    options.endpoint = siftd_->endpoint();
    options.name = name;
    return Client::Connect(options);
  }

  std::unique_ptr<SiftdProcess> siftd_;
};

// One subscription under test and what it must receive.
struct Probe {
  std::string pattern;
  Client* client = nullptr;
  std::unique_ptr<Subscription> sub;
  std::vector<std::string> expected;  // message ids, publish order
};

// Publishes every topic (payload = a unique id) and then, per probe, a fence
// message on a topic that matches it; checks that each probe received exactly
// the messages whose topic its pattern matches (by the reference matcher), in
// publish order, each once, stamped with its own sid.
void PublishAndCheck(Client& publisher, std::vector<Probe>& probes,
                     const std::vector<std::string>& topics) {
  std::vector<std::pair<std::string, std::string>> sent;  // (topic, id)
  for (size_t i = 0; i < topics.size(); ++i) {
    sent.emplace_back(topics[i], absl::StrCat("m", i));
  }
  // A fence per probe: its pattern with wildcards filled in. Since one
  // publisher's messages reach a subscriber in order, a probe's last
  // expected message arriving means nothing earlier is still in flight.
  for (size_t k = 0; k < probes.size(); ++k) {
    std::string fence;
    for (absl::string_view token : absl::StrSplit(probes[k].pattern, '.')) {
      if (!fence.empty()) fence += '.';
      fence += (token == "*")   ? "w"
               : (token == ">") ? "w.x"
                                : std::string(token);
    }
    sent.emplace_back(fence, absl::StrCat("fence", k));
  }
  for (Probe& probe : probes) {
    for (const auto& [topic, id] : sent) {
      if (PatternMatches(probe.pattern, topic)) probe.expected.push_back(id);
    }
  }
  for (size_t i = 0; i < sent.size(); ++i) {
    const absl::Status status =
        i + 1 == sent.size()
            ? publisher.PublishConfirmed(sent[i].first, sent[i].second)
            : publisher.Publish(sent[i].first, sent[i].second);
    ASSERT_TRUE(status.ok()) << sent[i].first << ": " << status;
  }
  for (Probe& probe : probes) {
    SCOPED_TRACE(absl::StrCat("pattern ", probe.pattern));
    std::vector<std::string> got;
    for (size_t n = 0; n < probe.expected.size(); ++n) {
      absl::StatusOr<Message> msg = probe.sub->Next(kDeliveryTimeout);
      if (!msg.ok()) {
        ADD_FAILURE() << "after " << got.size()
                      << " deliveries: " << msg.status();
        break;
      }
      EXPECT_EQ(msg->sid(), probe.sub->sid());
      EXPECT_TRUE(PatternMatches(probe.pattern, msg->topic()))
          << "delivered topic " << msg->topic();
      got.emplace_back(msg->payload());
    }
    EXPECT_EQ(got, probe.expected);
  }
  // Nothing else may follow: a stray delivery would have been published
  // before the fences, so it would have arrived by now; a short look suffices.
  for (Probe& probe : probes) {
    absl::StatusOr<Message> extra = probe.sub->Next(absl::Milliseconds(100));
    EXPECT_FALSE(extra.ok())
        << "pattern " << probe.pattern << " got an extra message on "
        << extra->topic() << ": " << extra->payload();
  }
}

const std::vector<std::string>& Patterns() {
  static const auto* patterns = new std::vector<std::string>{
      "orders.*",         "orders.>", "orders.eu.created", "*.eu.*",    ">",
      "orders.*.created", "*",        "*.*.*.>",           "billing.>",
  };
  return *patterns;
}

const std::vector<std::string>& Topics() {
  static const auto* topics = new std::vector<std::string>{
      "orders",
      "orders.eu",
      "orders.us",
      "orders.eu.created",
      "orders.us.created",
      "orders.eu.deleted",
      "orders.eu.created.v2",
      "users.eu.created",
      "users.eu",
      "users",
      "billing",
      "billing.invoice",
      "billing.invoice.paid.late.really",
      "ordersx.eu.created",
      "x.eu.y",
  };
  return *topics;
}

TEST_F(RoutingTest, OverlappingPatternsInOneClient) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto subscriber, NewClient("subscriber"));
  std::vector<Probe> probes;
  for (const std::string& pattern : Patterns()) {
    Probe probe;
    probe.pattern = pattern;
    probe.client = subscriber.get();
    SIFT_ASSERT_OK_AND_ASSIGN(probe.sub, subscriber->Subscribe(pattern));
    probes.push_back(std::move(probe));
  }
  // The same pattern twice in one client: two subscriptions, two deliveries.
  Probe twin;
  twin.pattern = "orders.*";
  twin.client = subscriber.get();
  SIFT_ASSERT_OK_AND_ASSIGN(twin.sub, subscriber->Subscribe("orders.*"));
  probes.push_back(std::move(twin));
  PublishAndCheck(*publisher, probes, Topics());
}

TEST_F(RoutingTest, OverlappingPatternsAcrossClients) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 3; ++i) {
    SIFT_ASSERT_OK_AND_ASSIGN(auto client, NewClient(absl::StrCat("sub", i)));
    clients.push_back(std::move(client));
  }
  std::vector<Probe> probes;
  // Every pattern in two different clients (round robin over three).
  for (size_t i = 0; i < 2 * Patterns().size(); ++i) {
    Probe probe;
    probe.pattern = Patterns()[i % Patterns().size()];
    probe.client = clients[i % clients.size()].get();
    SIFT_ASSERT_OK_AND_ASSIGN(probe.sub,
                              probe.client->Subscribe(probe.pattern));
    probes.push_back(std::move(probe));
  }
  PublishAndCheck(*publisher, probes, Topics());
}

TEST_F(RoutingTest, NonMatchingTopicsAreNotDelivered) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto subscriber, NewClient("subscriber"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto star, subscriber->Subscribe("a.*"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto exact, subscriber->Subscribe("a.b"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto tail, subscriber->Subscribe("a.b.>"));
  // None of these match any of the three patterns.
  for (const char* topic : {"a", "b.a", "a.b.c.d.e.x.ignored.not", "ab.b",
                            "a.bc.d", "b", "x.a.b"}) {
    if (PatternMatches("a.b.>", topic)) continue;  // keep the list honest
    SIFT_ASSERT_OK(publisher->Publish(topic, "nope"));
  }
  SIFT_ASSERT_OK(publisher->PublishConfirmed("a.b", "fence"));
  // "a.b" matches a.* and a.b but not a.b.> (which needs one more token).
  for (Subscription* sub : {star.get(), exact.get()}) {
    SIFT_ASSERT_OK_AND_ASSIGN(Message msg, sub->Next(kDeliveryTimeout));
    EXPECT_EQ(msg.payload(), "fence")
        << sub->pattern() << " got " << msg.topic();
  }
  SIFT_ASSERT_OK(publisher->PublishConfirmed("a.b.c.d", "fence2"));
  SIFT_ASSERT_OK_AND_ASSIGN(Message msg, tail->Next(kDeliveryTimeout));
  EXPECT_EQ(msg.payload(), "fence2") << "a.b.> got " << msg.topic();
}

TEST_F(RoutingTest, UnsubscribeStopsDelivery) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto subscriber, NewClient("subscriber"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto leaving, subscriber->Subscribe("t.*"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto staying, subscriber->Subscribe("t.>"));

  SIFT_ASSERT_OK(publisher->PublishConfirmed("t.1", "one"));
  for (Subscription* sub : {leaving.get(), staying.get()}) {
    SIFT_ASSERT_OK_AND_ASSIGN(Message msg, sub->Next(kDeliveryTimeout));
    EXPECT_EQ(msg.payload(), "one");
  }
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats before, publisher->Stats());

  SIFT_ASSERT_OK(leaving->Unsubscribe());
  SIFT_ASSERT_OK(publisher->PublishConfirmed("t.2", "two"));
  SIFT_ASSERT_OK_AND_ASSIGN(Message msg, staying->Next(kDeliveryTimeout));
  EXPECT_EQ(msg.payload(), "two");
  absl::StatusOr<Message> none = leaving->Next(absl::Milliseconds(100));
  EXPECT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kCancelled)
      << none.status();
  // The broker sent exactly one DELIVER for t.2 (the broker counts are
  // exact: the publish was confirmed before STATS was asked).
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats after, publisher->Stats());
  EXPECT_EQ(after.messages_out() - before.messages_out(), 1u);
  EXPECT_EQ(before.subscriptions() - after.subscriptions(), 1u);

  // Destroying the last subscription unsubscribes too: nothing is delivered
  // any more (counted as no_subscribers by the broker).
  staying.reset();
  // The unsubscribe of a destroyed Subscription is best effort and
  // asynchronous: wait (bounded) until the broker has processed it.
  uint64_t subs = after.subscriptions();
  for (int i = 0; i < 100 && subs != before.subscriptions() - 2; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats now, publisher->Stats());
    subs = now.subscriptions();
  }
  EXPECT_EQ(subs, before.subscriptions() - 2);
  SIFT_ASSERT_OK(publisher->PublishConfirmed("t.3", "three"));
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats last, publisher->Stats());
  EXPECT_EQ(last.messages_out(), after.messages_out());
}

TEST_F(RoutingTest, TenThousandMessagesArriveInOrder) {
  constexpr int kCount = 10000;
  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto subscriber, NewClient("subscriber"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto sub, subscriber->Subscribe("seq.>"));
  for (int i = 0; i < kCount; ++i) {
    const std::string payload = absl::StrCat(i);
    const absl::Status status =
        i + 1 == kCount ? publisher->PublishConfirmed("seq.numbers", payload)
                        : publisher->Publish("seq.numbers", payload);
    ASSERT_TRUE(status.ok()) << "message " << i << ": " << status;
  }
  int next = 0;
  for (; next < kCount; ++next) {
    absl::StatusOr<Message> msg = sub->Next(kDeliveryTimeout);
    if (!msg.ok()) {
      ADD_FAILURE() << "message " << next
                    << " did not arrive: " << msg.status();
      break;
    }
    int got = -1;
    ASSERT_TRUE(absl::SimpleAtoi(
        absl::string_view(msg->payload().data(), msg->payload().size()), &got));
    if (got != next) {
      ADD_FAILURE() << "expected message " << next << ", got " << got;
      break;
    }
  }
  EXPECT_EQ(next, kCount);
  if (next != kCount) {
    auto stats = publisher->Stats();
    if (stats.ok()) std::cerr << "broker stats:\n" << stats->DebugString();
  }
}

}  // namespace
}  // namespace sift::test

namespace sift::test {
namespace {

// Close() right after a burst of fire-and-forget publishes still delivers
// every one of them: what the client queued, and what it had handed to
// ZeroMQ, goes out before the socket closes.
TEST_F(RoutingTest, CloseAfterBurstDeliversEverything) {
  auto subscriber = NewClient("burst-sub");
  ASSERT_TRUE(subscriber.ok()) << subscriber.status();
  auto sub = (*subscriber)->Subscribe("burst.x");
  ASSERT_TRUE(sub.ok()) << sub.status();

  constexpr int kCount = 50000;
  {
    auto publisher = NewClient("burst-pub");
    ASSERT_TRUE(publisher.ok()) << publisher.status();
    const std::string payload(200, 'b');
    for (int i = 0; i < kCount; ++i) {
      absl::Status s = (*publisher)->Publish("burst.x", payload);
      ASSERT_TRUE(s.ok()) << i << ": " << s;
    }
    (*publisher)->Close();
  }  // the publisher, its context and its sockets are gone here

  int received = 0;
  while (received < kCount) {
    auto m = (*sub)->Next(kDeliveryTimeout);
    ASSERT_TRUE(m.ok()) << "after " << received << " of " << kCount << ": "
                        << m.status();
    ++received;
  }
  EXPECT_EQ(received, kCount);
}

}  // namespace
}  // namespace sift::test
