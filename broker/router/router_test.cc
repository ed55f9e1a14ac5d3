#include "broker/router/router.h"

#include <algorithm>
#include <map>
#include <vector>

#include "broker/protocol/codec.h"
#include "gtest/gtest.h"

namespace sift {
namespace {

using Target = Router::Target;

std::vector<std::pair<Router::ClientHandle, uint64_t>> Sorted(
    const std::vector<Target>& targets) {
  std::vector<std::pair<Router::ClientHandle, uint64_t>> out;
  for (const Target& t : targets) out.emplace_back(t.client, t.sid);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(RouterTest, RoutesToEveryMatchingSubscription) {
  Router router(RouterLimits{});
  auto a = router.AddClient("a");
  auto b = router.AddClient("b");
  ASSERT_TRUE(router.Subscribe(a, 1, "orders.*.created", "").ok());
  ASSERT_TRUE(router.Subscribe(a, 2, "orders.>", "").ok());
  ASSERT_TRUE(router.Subscribe(b, 1, "orders.eu.created", "").ok());
  ASSERT_TRUE(router.Subscribe(b, 2, "payments.>", "").ok());
  std::vector<Target> targets;
  ASSERT_TRUE(router.Publish("orders.eu.created", "", "", 10, &targets).ok());
  using P = std::pair<Router::ClientHandle, uint64_t>;
  EXPECT_EQ(Sorted(targets), (std::vector<P>{{a, 1}, {a, 2}, {b, 1}}));
  ASSERT_TRUE(router.Publish("orders.eu", "", "", 10, &targets).ok());
  EXPECT_EQ(Sorted(targets), (std::vector<P>{{a, 2}}));
  ASSERT_TRUE(router.Publish("other", "", "", 10, &targets).ok());
  EXPECT_TRUE(targets.empty());
  EXPECT_EQ(router.drops(DropReason::kNoSubscribers), 1u);
}

TEST(RouterTest, AStoredMessageWithNoSubscriberIsNotADrop) {
  Router router(RouterLimits{});
  std::vector<Target> targets;
  ASSERT_TRUE(router
                  .Publish("audit.login", "", "", 10, &targets,
                           /*broker_made=*/false, /*stored=*/true)
                  .ok());
  EXPECT_TRUE(targets.empty());
  EXPECT_EQ(router.drops(DropReason::kNoSubscribers), 0u);
  wire::StatsReply stats;
  router.FillStats(10, &stats);
  EXPECT_EQ(stats.messages_in(), 1u);  // still counted in
  ASSERT_TRUE(router.Publish("audit.login", "", "", 10, &targets).ok());
  EXPECT_EQ(router.drops(DropReason::kNoSubscribers), 1u);
}

TEST(RouterTest, QueueGroupGetsOneMemberPerMessageEvenly) {
  Router router(RouterLimits{});
  std::vector<Router::ClientHandle> members;
  for (int i = 0; i < 4; ++i) {
    members.push_back(router.AddClient("w"));
    ASSERT_TRUE(router.Subscribe(members.back(), 1, "jobs.*", "workers").ok());
  }
  auto plain = router.AddClient("p");
  ASSERT_TRUE(router.Subscribe(plain, 9, "jobs.>", "").ok());
  std::map<Router::ClientHandle, int> counts;
  std::vector<Target> targets;
  for (int i = 0; i < 400; ++i) {
    ASSERT_TRUE(router.Publish("jobs.resize", "", "", 1, &targets).ok());
    ASSERT_EQ(targets.size(), 2u);
    for (const Target& t : targets) ++counts[t.client];
  }
  EXPECT_EQ(counts[plain], 400);
  for (auto m : members) EXPECT_EQ(counts[m], 100);
}

TEST(RouterTest, SubscribeErrorsCarryWireCodes) {
  RouterLimits limits;
  limits.max_subscriptions_per_client = 2;
  Router router(limits);
  auto c = router.AddClient("c");
  EXPECT_EQ(protocol::WireCodeOf(router.Subscribe(c, 0, "a", "")),
            wire::INVALID_REQUEST);
  EXPECT_EQ(protocol::WireCodeOf(router.Subscribe(c, 1, "a..b", "")),
            wire::INVALID_PATTERN);
  EXPECT_EQ(protocol::WireCodeOf(router.Subscribe(c, 1, "a", "bad group")),
            wire::INVALID_QUEUE_GROUP);
  ASSERT_TRUE(router.Subscribe(c, 1, "a", "").ok());
  EXPECT_EQ(protocol::WireCodeOf(router.Subscribe(c, 1, "b", "")),
            wire::DUPLICATE_SID);
  ASSERT_TRUE(router.Subscribe(c, 2, "b", "").ok());
  absl::Status full = router.Subscribe(c, 3, "c", "");
  EXPECT_EQ(protocol::WireCodeOf(full), wire::TOO_MANY_SUBSCRIPTIONS);
  EXPECT_NE(full.message().find("limit is 2"), absl::string_view::npos);
  EXPECT_EQ(protocol::WireCodeOf(router.Unsubscribe(c, 7)), wire::UNKNOWN_SID);
  EXPECT_TRUE(router.Unsubscribe(c, 1).ok());
  EXPECT_EQ(router.subscription_count(), 1u);
}

TEST(RouterTest, PublishErrors) {
  RouterLimits limits;
  limits.max_payload_bytes = 100;
  Router router(limits);
  std::vector<Target> targets;
  EXPECT_EQ(protocol::WireCodeOf(router.Publish("a.*", "", "", 1, &targets)),
            wire::INVALID_TOPIC);
  EXPECT_EQ(protocol::WireCodeOf(router.Publish("a", "bad..reply", "", 1, &targets)),
            wire::INVALID_TOPIC);
  EXPECT_EQ(protocol::WireCodeOf(router.Publish("a", "", "", 101, &targets)),
            wire::PAYLOAD_TOO_LARGE);
  EXPECT_TRUE(router.Publish("a", "", "", 100, &targets).ok());
  EXPECT_EQ(router.drops(DropReason::kInvalidTopic), 2u);
  EXPECT_EQ(router.drops(DropReason::kPayloadTooLarge), 1u);
}

TEST(RouterTest, InboxesArePrivate) {
  Router router(RouterLimits{});
  auto a = router.AddClient("a");
  auto snoop = router.AddClient("snoop");
  EXPECT_EQ(router.inbox_prefix(a), "_INBOX." + router.client_id(a));
  ASSERT_TRUE(router.Subscribe(a, 1, router.inbox_prefix(a) + ".>", "").ok());
  EXPECT_EQ(protocol::WireCodeOf(router.Subscribe(
                snoop, 1, router.inbox_prefix(a) + ".>", "")),
            wire::FORBIDDEN);
  ASSERT_TRUE(router.Subscribe(snoop, 2, ">", "").ok());
  ASSERT_TRUE(router.Subscribe(snoop, 3, "_INBOX.*.*", "").ok());
  std::vector<Target> targets;
  ASSERT_TRUE(
      router.Publish(router.inbox_prefix(a) + ".7", "", "", 1, &targets).ok());
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0].client, a);
}

TEST(RouterTest, RemoveClientDropsItsSubscriptions) {
  Router router(RouterLimits{});
  auto a = router.AddClient("a");
  for (uint64_t sid = 1; sid <= 100; ++sid) {
    ASSERT_TRUE(router.Subscribe(a, sid, "t." + std::to_string(sid), "g").ok());
  }
  EXPECT_EQ(router.subscription_count(), 100u);
  router.RemoveClient(a);
  EXPECT_EQ(router.subscription_count(), 0u);
  EXPECT_EQ(router.client_count(), 0u);
  std::vector<Target> targets;
  ASSERT_TRUE(router.Publish("t.5", "", "", 1, &targets).ok());
  EXPECT_TRUE(targets.empty());
  // The slot is reused with a fresh id.
  auto b = router.AddClient("b");
  EXPECT_NE(router.client_id(b), "c1");
}

TEST(RouterTest, StatsCountTopicsAndDrops) {
  RouterLimits limits;
  limits.max_tracked_topics = 2;
  Router router(limits);
  auto a = router.AddClient("a");
  ASSERT_TRUE(router.Subscribe(a, 1, ">", "").ok());
  std::vector<Target> targets;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(router.Publish("x", "", "", 5, &targets).ok());
  ASSERT_TRUE(router.Publish("y", "", "", 5, &targets).ok());
  ASSERT_TRUE(router.Publish("z", "", "", 5, &targets).ok());
  ASSERT_EQ(targets.size(), 1u);
  router.RecordDelivered(targets[0].slot, 5);
  wire::StatsReply stats;
  router.FillStats(10, &stats);
  EXPECT_EQ(stats.messages_in(), 5u);
  EXPECT_EQ(stats.messages_out(), 1u);
  EXPECT_EQ(stats.bytes_in(), 25u);
  EXPECT_EQ(stats.subscriptions(), 1u);
  EXPECT_EQ(stats.clients(), 1u);
  ASSERT_EQ(stats.topics_size(), 3);
  EXPECT_EQ(stats.topics(0).topic(), "x");
  EXPECT_EQ(stats.topics(0).messages_in(), 3u);
  // "(other topics)" is ranked like any topic (ties by name).
  EXPECT_EQ(stats.topics(1).topic(), "(other topics)");
  EXPECT_EQ(stats.topics(1).messages_out(), 1u);
  EXPECT_EQ(stats.topics(2).topic(), "y");
  bool found = false;
  for (const auto& d : stats.drops()) found |= d.reason() == "no_subscribers";
  EXPECT_TRUE(found);
}

// Per-topic counters live in the router and are found through notes on the
// match cache's entries: they must survive the cache being dropped (every
// subscribe does that) and agree with a count by name.
TEST(RouterTest, TopicCountsSurviveCacheResets) {
  RouterLimits limits;
  limits.max_tracked_topics = 3;
  Router router(limits);
  auto a = router.AddClient("a");
  std::vector<Target> targets;
  std::map<std::string, uint64_t> expected_in;
  uint64_t other = 0;
  for (int round = 0; round < 20; ++round) {
    for (int t = 0; t < 5; ++t) {
      const std::string topic = "t." + std::to_string(t);
      ASSERT_TRUE(router.Publish(topic, "", "", 1, &targets).ok());
      // Topics first seen once the table is full count under "(other topics)".
      if (t < 3) {
        ++expected_in[topic];
      } else {
        ++other;
      }
    }
    // Every few rounds a subscription changes the tree (and drops the cache).
    if (round % 4 == 0) {
      ASSERT_TRUE(router.Subscribe(a, round + 1, "t.>", "").ok());
    }
  }
  // An invalid topic is still refused after valid ones were cached.
  EXPECT_FALSE(router.Publish("t..x", "", "", 1, &targets).ok());

  wire::StatsReply stats;
  router.FillStats(10, &stats);
  std::map<std::string, uint64_t> got_in;
  for (const auto& t : stats.topics()) got_in[t.topic()] = t.messages_in();
  EXPECT_EQ(got_in["t.0"], expected_in["t.0"]);
  EXPECT_EQ(got_in["t.1"], expected_in["t.1"]);
  EXPECT_EQ(got_in["t.2"], expected_in["t.2"]);
  EXPECT_EQ(got_in["(other topics)"], other);
  EXPECT_EQ(stats.topics_tracked(), 3u);
  EXPECT_EQ(stats.messages_in(), 100u);
}

// Issue 7, item 8: restrictions on who may receive a message apply before a
// queue-group member is chosen.
TEST(RouterTest, InboxMessagesReachTheirOwnerInsideAQueueGroup) {
  Router router(RouterLimits{});
  auto a = router.AddClient("a");
  auto b = router.AddClient("b");
  ASSERT_TRUE(router.Subscribe(a, 1, ">", "g").ok());
  ASSERT_TRUE(router.Subscribe(b, 1, ">", "g").ok());
  std::vector<Target> targets;
  const std::string inbox = router.inbox_prefix(a) + ".r";
  int to_a = 0;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(router.Publish(inbox, "", "", 1, &targets).ok());
    for (const Target& t : targets) {
      EXPECT_EQ(t.client, a);
      to_a += t.client == a;
    }
  }
  EXPECT_EQ(to_a, 10);
  EXPECT_EQ(router.drops(DropReason::kNoSubscribers), 0u);
}

// Issue 7, items 9 and 10: per-topic figures add up to the global ones, with
// every inbox topic summed in one "(inbox topics)" row; "(other topics)" and "(inbox topics)" are
// ranked and bounded like any topic.
TEST(RouterTest, TopicRowsAddUpAndInboxesShareOneRow) {
  RouterLimits limits;
  limits.max_tracked_topics = 2;
  Router router(limits);
  auto a = router.AddClient("a");
  ASSERT_TRUE(router.Subscribe(a, 1, ">", "").ok());
  ASSERT_TRUE(
      router.Subscribe(a, 2, router.inbox_prefix(a) + ".>", "").ok());
  std::vector<Target> targets;
  uint64_t delivered = 0;
  for (int i = 0; i < 100; ++i) {
    const std::string topic =
        i % 2 == 0 ? router.inbox_prefix(a) + ".r" + std::to_string(i)
                   : "t." + std::to_string(i % 7);
    ASSERT_TRUE(router.Publish(topic, "", "", 1, &targets).ok());
    // Deliver every third target only (the rest "dropped").
    for (const Target& t : targets) {
      if (delivered++ % 3 == 0) router.RecordDelivered(t.slot, 1);
    }
  }
  wire::StatsReply stats;
  router.FillStats(100, &stats);
  uint64_t in = 0, out = 0;
  bool inbox_row = false;
  for (const auto& t : stats.topics()) {
    in += t.messages_in();
    out += t.messages_out();
    EXPECT_FALSE(t.topic().rfind("_INBOX", 0) == 0) << t.topic();
    if (t.topic() == "(inbox topics)") {
      inbox_row = true;
      EXPECT_EQ(t.messages_in(), 50u);
    }
  }
  EXPECT_TRUE(inbox_row);
  // A topic cannot pose as an aggregate row: their names hold a space.
  EXPECT_FALSE(router.Publish("(inbox topics)", "", "", 1, &targets).ok());
  EXPECT_EQ(in, stats.messages_in());
  EXPECT_EQ(out, stats.messages_out());
  EXPECT_EQ(stats.topics_tracked(), 2u);

  for (uint32_t bound : {0u, 1u, 2u}) {
    wire::StatsReply bounded;
    router.FillStats(bound, &bounded);
    ASSERT_EQ(bounded.topics_size(), static_cast<int>(bound));
    for (int i = 1; i < bounded.topics_size(); ++i) {
      EXPECT_GE(bounded.topics(i - 1).messages_in(),
                bounded.topics(i).messages_in());
    }
  }
}

// Issue 7, item 6: ids do not repeat across Routers (broker restarts).
TEST(RouterTest, ClientIdsDifferAcrossRouters) {
  Router first(RouterLimits{});
  Router second(RouterLimits{});
  const std::string a = first.client_id(first.AddClient("a"));
  const std::string b = second.client_id(second.AddClient("b"));
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("c1-", 0), 0u) << a;
  EXPECT_LE(a.size(), 32u);
}

// Issue 7, items 5 and 15: the broker-wide subscription bound, and sid 0.
TEST(RouterTest, BrokerWideSubscriptionBoundAndSidZero) {
  RouterLimits limits;
  limits.max_subscriptions = 3;
  Router router(limits);
  auto a = router.AddClient("a");
  auto b = router.AddClient("b");
  ASSERT_TRUE(router.Subscribe(a, 1, "x", "").ok());
  ASSERT_TRUE(router.Subscribe(a, 2, "y", "").ok());
  ASSERT_TRUE(router.Subscribe(b, 1, "x", "").ok());
  absl::Status full = router.Subscribe(b, 2, "y", "");
  EXPECT_EQ(protocol::WireCodeOf(full), wire::TOO_MANY_SUBSCRIPTIONS) << full;
  EXPECT_EQ(protocol::WireCodeOf(router.Unsubscribe(a, 0)),
            wire::INVALID_REQUEST);
  ASSERT_TRUE(router.Unsubscribe(a, 1).ok());
  EXPECT_TRUE(router.Subscribe(b, 2, "y", "").ok());
}

}  // namespace
}  // namespace sift
