// The broker's counters as seen through Client::Stats(): messages and bytes
// in/out, clients, subscriptions, per-topic counts and drops by reason.
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "tests/harness.h"
#include "tests/siftd_process.h"
#include "tests/test_util.h"

namespace sift::test {
namespace {

class StatsTest : public ::testing::Test {
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

const wire::TopicCount* FindTopic(const BrokerStats& stats,
                                  const std::string& topic) {
  for (const wire::TopicCount& t : stats.topics()) {
    if (t.topic() == topic) return &t;
  }
  return nullptr;
}

TEST_F(StatsTest, CountsMessagesTopicsClientsAndDrops) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto subscriber, NewClient("subscriber"));
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats start, publisher->Stats());
  EXPECT_FALSE(start.server_version().empty());
  EXPECT_GE(start.clients(), 2u);
  EXPECT_EQ(start.messages_in(), 0u) << start.DebugString();
  EXPECT_EQ(start.messages_out(), 0u) << start.DebugString();

  SIFT_ASSERT_OK_AND_ASSIGN(auto sub, subscriber->Subscribe("s.>"));
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats subscribed, publisher->Stats());
  EXPECT_EQ(subscribed.subscriptions(), start.subscriptions() + 1);

  // 10 x "s.a" (5 bytes each), 5 x "s.b" (3 bytes), all delivered once;
  // 3 x "nobody.here" (7 bytes) with no subscriber.
  for (int i = 0; i < 10; ++i)
    SIFT_ASSERT_OK(publisher->Publish("s.a", "aaaaa"));
  for (int i = 0; i < 5; ++i) SIFT_ASSERT_OK(publisher->Publish("s.b", "bbb"));
  for (int i = 0; i < 3; ++i) {
    SIFT_ASSERT_OK(publisher->PublishConfirmed("nobody.here", "nothing"));
  }
  for (int i = 0; i < 15; ++i) {
    SIFT_ASSERT_OK(sub->Next(absl::Seconds(10)));
  }

  // Every publish was routed before the confirmed ones were answered, and
  // STATS travels the same connection after them: the counts are exact.
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats stats, publisher->Stats());
  EXPECT_EQ(stats.messages_in(), 18u) << stats.DebugString();
  EXPECT_EQ(stats.messages_out(), 15u) << stats.DebugString();
  EXPECT_EQ(stats.bytes_in(), 10u * 5 + 5u * 3 + 3u * 7) << stats.DebugString();
  EXPECT_EQ(stats.bytes_out(), 10u * 5 + 5u * 3) << stats.DebugString();
  EXPECT_EQ(stats.clients(), start.clients());
  EXPECT_EQ(stats.subscriptions(), subscribed.subscriptions());
  EXPECT_GE(stats.topics_tracked(), 3u);

  const wire::TopicCount* a = FindTopic(stats, "s.a");
  ASSERT_NE(a, nullptr) << stats.DebugString();
  EXPECT_EQ(a->messages_in(), 10u);
  EXPECT_EQ(a->messages_out(), 10u);
  const wire::TopicCount* b = FindTopic(stats, "s.b");
  ASSERT_NE(b, nullptr) << stats.DebugString();
  EXPECT_EQ(b->messages_in(), 5u);
  EXPECT_EQ(b->messages_out(), 5u);
  const wire::TopicCount* nobody = FindTopic(stats, "nobody.here");
  ASSERT_NE(nobody, nullptr) << stats.DebugString();
  EXPECT_EQ(nobody->messages_in(), 3u);
  EXPECT_EQ(nobody->messages_out(), 0u);
  // Busiest first.
  ASSERT_GE(stats.topics_size(), 3);
  EXPECT_EQ(stats.topics(0).topic(), "s.a") << stats.DebugString();

  EXPECT_EQ(Drops(stats, "no_subscribers"), 3u) << stats.DebugString();
  EXPECT_GE(stats.uptime_ms(), subscribed.uptime_ms());
}

TEST_F(StatsTest, ClientsAndSubscriptionsFollowConnectAndClose) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto observer, NewClient("observer"));
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats base, observer->Stats());

  SIFT_ASSERT_OK_AND_ASSIGN(auto other, NewClient("other"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto s1, other->Subscribe("x.*"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto s2, other->Subscribe("y.>"));
  // other's HELLO and SUBs were answered before we ask: exact.
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats joined, observer->Stats());
  EXPECT_EQ(joined.clients(), base.clients() + 1);
  EXPECT_EQ(joined.subscriptions(), base.subscriptions() + 2);

  SIFT_ASSERT_OK(s1->Unsubscribe());
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats unsubscribed, observer->Stats());
  EXPECT_EQ(unsubscribed.subscriptions(), base.subscriptions() + 1);

  // Close() says BYE; the broker processes it asynchronously to us, so poll
  // (bounded) until the client and its subscription are gone.
  s2.reset();
  other->Close();
  BrokerStats now = unsubscribed;
  for (int i = 0; i < 100 && (now.clients() != base.clients() ||
                              now.subscriptions() != base.subscriptions());
       ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    SIFT_ASSERT_OK_AND_ASSIGN(now, observer->Stats());
  }
  EXPECT_EQ(now.clients(), base.clients()) << now.DebugString();
  EXPECT_EQ(now.subscriptions(), base.subscriptions()) << now.DebugString();
}

TEST_F(StatsTest, QueueGroupsCountEachDeliveryOnce) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto w1, NewClient("w1"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto w2, NewClient("w2"));
  SubscribeOptions grouped;
  grouped.queue_group = "g";
  SIFT_ASSERT_OK_AND_ASSIGN(auto s1, w1->Subscribe("q", grouped));
  SIFT_ASSERT_OK_AND_ASSIGN(auto s2, w2->Subscribe("q", grouped));
  for (int i = 0; i < 9; ++i) SIFT_ASSERT_OK(publisher->Publish("q", "x"));
  SIFT_ASSERT_OK(publisher->PublishConfirmed("q", "x"));
  // The broker may still hold deliveries for the members in its outgoing
  // batches when it answers STATS; once the members have them all, the
  // counts are final.
  int received = 0;
  for (int i = 0; i < 100 && received < 10; ++i) {
    for (Subscription* sub : {s1.get(), s2.get()}) {
      if (sub->Next(absl::Milliseconds(100)).ok()) ++received;
    }
  }
  EXPECT_EQ(received, 10);
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats stats, publisher->Stats());
  EXPECT_EQ(stats.messages_in(), 10u);
  EXPECT_EQ(stats.messages_out(), 10u);
  const wire::TopicCount* q = FindTopic(stats, "q");
  ASSERT_NE(q, nullptr) << stats.DebugString();
  EXPECT_EQ(q->messages_out(), 10u);
  EXPECT_EQ(Drops(stats, "no_subscribers"), 0u) << stats.DebugString();
}

// A message a stream stores is kept, not dropped: with no live subscriber
// on its topic it is not counted under no_subscribers. One no stream
// captures still is.
TEST(StatsNoSubscribersTest, MessagesAStreamKeepsAreNotDrops) {
  auto siftd = StartSiftdWithStreams();
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  StreamConfig config;
  config.name = "kept";
  config.subjects = {"kept.>"};
  SIFT_ASSERT_OK(client->AddStream(config).status());
  for (int i = 0; i < 3; ++i) {
    SIFT_ASSERT_OK(client->PublishConfirmed("kept.a", "stored"));
  }
  SIFT_ASSERT_OK(client->PublishConfirmed("lost.a", "nobody"));
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats stats, client->Stats());
  EXPECT_EQ(stats.messages_in(), 4u) << stats.DebugString();
  EXPECT_EQ(Drops(stats, "no_subscribers"), 1u) << stats.DebugString();
  SIFT_ASSERT_OK_AND_ASSIGN(StreamInfo info, client->GetStreamInfo("kept"));
  EXPECT_EQ(info.messages, 3u);
}

// One STATS reply is one snapshot: with every topic listed, the per-topic
// counts add up to the totals, however busy the broker is when asked.
TEST_F(StatsTest, TopicCountsAddUpToTotalsInEverySnapshot) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto subscriber, NewClient("subscriber"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto sub, subscriber->Subscribe("snap.>"));
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    for (int i = 0; i < 50; ++i) {
      SIFT_ASSERT_OK(publisher->Publish(absl::StrCat("snap.t", i % 5), "x"));
    }
    // Asked while deliveries may still be in flight.
    SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats stats, publisher->Stats());
    ASSERT_EQ(stats.topics_tracked(),
              static_cast<uint64_t>(stats.topics_size()));
    uint64_t in = 0, out = 0;
    for (const wire::TopicCount& t : stats.topics()) {
      in += t.messages_in();
      out += t.messages_out();
    }
    EXPECT_EQ(in, stats.messages_in());
    EXPECT_EQ(out, stats.messages_out()) << stats.DebugString();
    if (HasFailure()) break;
  }
  // Drain what arrived (bounded).
  for (int i = 0; i < 2000 && sub->Next(absl::Milliseconds(200)).ok(); ++i) {
  }
}

}  // namespace
}  // namespace sift::test
