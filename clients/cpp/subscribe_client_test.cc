// What Subscribe() sends for its SubscribeOptions, against a scripted fake
// broker (fake_broker.h): the SUB's fields as given, and the same SUB again
// after the broker lost the session. The broker's handling of them is
// exercised by tests/ (slow_consumer_test for SubscribeOptions::slow).
#include <atomic>
#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "clients/cpp/fake_broker.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"

namespace sift {
namespace {

using test::Answer;
using test::ConnectTo;
using test::ErrorFor;
using test::FakeBroker;
using test::OkFor;
using test::Out;

// Accepts every SUB; answers STATS with HELLO_REQUIRED once `lose_session`
// is set, so that the client starts a new session and resubscribes.
FakeBroker::Handler AcceptSubs(const std::atomic<bool>& lose_session) {
  return [&lose_session](const wire::Header& h) -> std::vector<Out> {
    if (h.has_sub() && h.request_id() != 0) {
      return {Answer(OkFor(h.request_id()))};
    }
    if (h.has_stats() && lose_session) {
      return {Answer(ErrorFor(h.request_id(), wire::HELLO_REQUIRED))};
    }
    return {};
  };
}

// The SUB for `pattern` (the first), or its resubscription (the second;
// it has a request id of its own since the client ends a subscription
// the new session refuses).
std::optional<wire::Header> SubFor(FakeBroker& broker, const char* pattern,
                                   bool resubscription) {
  return broker.WaitForNth(resubscription ? 1 : 0, [&](const wire::Header& h) {
    return h.has_sub() && h.sub().pattern() == pattern;
  });
}

TEST(SubscribeClientTest, SlowConsumerIsSentAndResentAfterAReconnect) {
  std::atomic<bool> lose_session{false};
  FakeBroker broker(AcceptSubs(lose_session));
  auto client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);

  SubscribeOptions oldest;
  oldest.slow = SlowConsumer{SlowPolicy::kDropOldest, 32 << 10, 100};
  auto oldest_sub = client->Subscribe("load.a", oldest);
  ASSERT_TRUE(oldest_sub.ok()) << oldest_sub.status();
  SubscribeOptions disconnect;
  disconnect.queue_group = "workers";
  disconnect.slow = SlowConsumer{};
  disconnect.slow->policy = SlowPolicy::kDisconnect;
  auto disconnect_sub = client->Subscribe("load.b", disconnect);
  ASSERT_TRUE(disconnect_sub.ok()) << disconnect_sub.status();
  SubscribeOptions newest;
  newest.slow = SlowConsumer{};  // present, every field the default
  auto newest_sub = client->Subscribe("load.c", newest);
  ASSERT_TRUE(newest_sub.ok()) << newest_sub.status();
  auto plain_sub = client->Subscribe("load.d");
  ASSERT_TRUE(plain_sub.ok()) << plain_sub.status();

  for (bool resubscription : {false, true}) {
    SCOPED_TRACE(resubscription ? "resubscribed" : "subscribed");
    if (resubscription) {
      lose_session = true;
      client->Stats(absl::Seconds(1)).status().IgnoreError();
    }
    auto a = SubFor(broker, "load.a", resubscription);
    ASSERT_TRUE(a.has_value());
    ASSERT_TRUE(a->sub().has_slow());
    EXPECT_EQ(a->sub().slow().policy(), wire::DROP_OLDEST);
    EXPECT_EQ(a->sub().slow().max_pending_bytes(), 32u << 10);
    EXPECT_EQ(a->sub().slow().max_pending_msgs(), 100u);
    EXPECT_FALSE(a->sub().has_ack());

    auto b = SubFor(broker, "load.b", resubscription);
    ASSERT_TRUE(b.has_value());
    ASSERT_TRUE(b->sub().has_slow());
    EXPECT_EQ(b->sub().slow().policy(), wire::DISCONNECT);
    EXPECT_EQ(b->sub().slow().max_pending_bytes(), 0u);
    EXPECT_EQ(b->sub().slow().max_pending_msgs(), 0u);
    EXPECT_EQ(b->sub().queue_group(), "workers");

    auto c = SubFor(broker, "load.c", resubscription);
    ASSERT_TRUE(c.has_value());
    EXPECT_TRUE(c->sub().has_slow());
    EXPECT_EQ(c->sub().slow().policy(), wire::DROP_NEWEST);

    auto d = SubFor(broker, "load.d", resubscription);
    ASSERT_TRUE(d.has_value());
    EXPECT_FALSE(d->sub().has_slow());
  }
  EXPECT_GE(broker.hellos(), 2);
}

}  // namespace
}  // namespace sift
