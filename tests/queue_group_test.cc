// Queue groups through a real siftd: every message goes to exactly one member
// of each matching group (spread evenly), while plain subscribers get all.
#include <cstdint>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/protocol/batch.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"
#include "tests/raw_dealer.h"
#include "tests/siftd_process.h"
#include "tests/test_util.h"

namespace sift::test {
namespace {

constexpr absl::Duration kWaitAll = absl::Seconds(30);

class QueueGroupTest : public ::testing::Test {
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

// A subscription whose callback feeds a Collector.
struct Member {
  // Shared with the callback, which may still run on the client's I/O thread
  // while the Member is destroyed.
  std::shared_ptr<Collector> received = std::make_shared<Collector>();
  std::unique_ptr<Subscription> sub;
};

absl::StatusOr<Member> Join(Client& client, const std::string& pattern,
                            const std::string& group) {
  Member member;
  SubscribeOptions options;
  options.queue_group = group;
  std::shared_ptr<Collector> sink = member.received;
  options.callback = [sink](const Message& msg) {
    sink->Add(std::string(msg.payload()));
  };
  absl::StatusOr<std::unique_ptr<Subscription>> sub =
      client.Subscribe(pattern, options);
  if (!sub.ok()) return sub.status();
  member.sub = *std::move(sub);
  return member;
}

size_t Total(const std::vector<Member*>& members) {
  size_t total = 0;
  for (Member* m : members) total += m->received->size();
  return total;
}

// Waits (bounded) until the members together hold at least `n` messages.
size_t WaitForTotal(const std::vector<Member*>& members, size_t n) {
  const absl::Time deadline = absl::Now() + kWaitAll;
  size_t total = Total(members);
  for (int i = 0; i < 10000 && total < n && absl::Now() < deadline; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
    total = Total(members);
  }
  return total;
}

// Checks that the members' messages together are exactly `expected`, each
// once, and returns how many each got.
std::vector<size_t> CheckPartition(const std::vector<Member*>& members,
                                   const std::set<std::string>& expected,
                                   const std::string& group) {
  SCOPED_TRACE(absl::StrCat("group ", group));
  std::set<std::string> seen;
  std::vector<size_t> shares;
  size_t duplicates = 0;
  for (Member* m : members) {
    std::vector<std::string> values = m->received->values();
    shares.push_back(values.size());
    for (std::string& v : values) {
      if (!seen.insert(std::move(v)).second) ++duplicates;
    }
  }
  EXPECT_EQ(duplicates, 0u) << "messages delivered to more than one member";
  EXPECT_EQ(seen, expected);
  return shares;
}

TEST_F(QueueGroupTest, EachMessageReachesExactlyOneMemberEvenly) {
  constexpr int kMessages = 4000;
  constexpr int kMembers = 4;
  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<Member> members;
  for (int i = 0; i < kMembers; ++i) {
    SIFT_ASSERT_OK_AND_ASSIGN(auto client,
                              NewClient(absl::StrCat("worker", i)));
    SIFT_ASSERT_OK_AND_ASSIGN(Member member,
                              Join(*client, "jobs.>", "workers"));
    clients.push_back(std::move(client));
    members.push_back(std::move(member));
  }
  SIFT_ASSERT_OK_AND_ASSIGN(auto watcher, NewClient("watcher"));
  SIFT_ASSERT_OK_AND_ASSIGN(Member plain, Join(*watcher, "jobs.>", ""));
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats before, publisher->Stats());

  std::set<std::string> all;
  for (int i = 0; i < kMessages; ++i) {
    const std::string payload = absl::StrCat(i);
    const std::string topic = absl::StrCat("jobs.kind", i % 7);
    all.insert(payload);
    const absl::Status status =
        i + 1 == kMessages ? publisher->PublishConfirmed(topic, payload)
                           : publisher->Publish(topic, payload);
    ASSERT_TRUE(status.ok()) << "message " << i << ": " << status;
  }

  std::vector<Member*> group;
  for (Member& m : members) group.push_back(&m);
  EXPECT_EQ(WaitForTotal(group, kMessages), static_cast<size_t>(kMessages));
  EXPECT_EQ(plain.received->WaitFor(kMessages, kWaitAll),
            static_cast<size_t>(kMessages));

  // The broker's own count is exact (the last publish was confirmed before
  // STATS): one DELIVER per message to the group and one to the watcher,
  // so no member got a duplicate that is still in flight.
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats after, publisher->Stats());
  EXPECT_EQ(after.messages_in() - before.messages_in(),
            static_cast<uint64_t>(kMessages));
  EXPECT_EQ(after.messages_out() - before.messages_out(),
            static_cast<uint64_t>(2 * kMessages));

  std::vector<size_t> shares = CheckPartition(group, all, "workers");
  for (size_t i = 0; i < shares.size(); ++i) {
    EXPECT_GE(shares[i], kMessages * 15 / 100) << "member " << i;
    EXPECT_LE(shares[i], kMessages * 35 / 100) << "member " << i;
  }
  std::set<std::string> plain_got;
  for (std::string& v : plain.received->values()) plain_got.insert(v);
  EXPECT_EQ(plain_got, all);
  EXPECT_EQ(plain.received->size(), static_cast<size_t>(kMessages));
}

TEST_F(QueueGroupTest, TwoGroupsOnOverlappingPatterns) {
  constexpr int kPerTopic = 300;
  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto a1, NewClient("a1"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto a2, NewClient("a2"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto b1, NewClient("b1"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto b2, NewClient("b2"));
  // "alpha" on jobs.* (a1, a2); "beta" on jobs.> (b1, b2, and a1 again: one
  // client may be a member of two groups).
  SIFT_ASSERT_OK_AND_ASSIGN(Member alpha1, Join(*a1, "jobs.*", "alpha"));
  SIFT_ASSERT_OK_AND_ASSIGN(Member alpha2, Join(*a2, "jobs.*", "alpha"));
  SIFT_ASSERT_OK_AND_ASSIGN(Member beta1, Join(*b1, "jobs.>", "beta"));
  SIFT_ASSERT_OK_AND_ASSIGN(Member beta2, Join(*b2, "jobs.>", "beta"));
  SIFT_ASSERT_OK_AND_ASSIGN(Member beta3, Join(*a1, "jobs.>", "beta"));
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats before, publisher->Stats());

  std::set<std::string> one_token, all;  // jobs.x (both groups), jobs.x.y
  for (int i = 0; i < 2 * kPerTopic; ++i) {
    const bool short_topic = i % 2 == 0;
    const std::string payload = absl::StrCat(i);
    const std::string topic = short_topic ? "jobs.x" : "jobs.x.y";
    if (short_topic) one_token.insert(payload);
    all.insert(payload);
    const absl::Status status =
        i + 1 == 2 * kPerTopic ? publisher->PublishConfirmed(topic, payload)
                               : publisher->Publish(topic, payload);
    ASSERT_TRUE(status.ok()) << "message " << i << ": " << status;
  }
  std::vector<Member*> alpha = {&alpha1, &alpha2};
  std::vector<Member*> beta = {&beta1, &beta2, &beta3};
  EXPECT_EQ(WaitForTotal(alpha, one_token.size()), one_token.size());
  EXPECT_EQ(WaitForTotal(beta, all.size()), all.size());
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats after, publisher->Stats());
  EXPECT_EQ(after.messages_out() - before.messages_out(),
            one_token.size() + all.size());

  std::vector<size_t> alpha_shares = CheckPartition(alpha, one_token, "alpha");
  std::vector<size_t> beta_shares = CheckPartition(beta, all, "beta");
  for (size_t share : alpha_shares) EXPECT_GT(share, 0u);
  for (size_t share : beta_shares) EXPECT_GT(share, 0u);
}

// Issue 7: member A of group g on "x.>" and member B on "x.a". With x.a and
// x.b published alternately, B is eligible only for x.a, and A and B must
// share x.a evenly; the x.b traffic in between must not skew the split (a
// round-robin cursor per group name gave every x.a to the same member).
TEST_F(QueueGroupTest, EligibleMembersShareEvenlyWhateverIsInterleaved) {
  constexpr int kMessages = 1000;  // x.a and x.b alternately
  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto client_a, NewClient("a"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto client_b, NewClient("b"));
  SIFT_ASSERT_OK_AND_ASSIGN(Member a, Join(*client_a, "x.>", "g"));
  SIFT_ASSERT_OK_AND_ASSIGN(Member b, Join(*client_b, "x.a", "g"));

  std::set<std::string> all;
  for (int i = 0; i < kMessages; ++i) {
    const bool xa = i % 2 == 0;
    const std::string payload = absl::StrCat(xa ? "a" : "b", i);
    all.insert(payload);
    const std::string topic = xa ? "x.a" : "x.b";
    SIFT_ASSERT_OK(i + 1 == kMessages
                       ? publisher->PublishConfirmed(topic, payload)
                       : publisher->Publish(topic, payload));
  }
  std::vector<Member*> group = {&a, &b};
  ASSERT_EQ(WaitForTotal(group, kMessages), static_cast<size_t>(kMessages));
  CheckPartition(group, all, "g");

  // Count x.a (payload "a<i>") per member; B must have no x.b.
  auto count = [](const Member& m, char prefix) {
    size_t n = 0;
    for (const std::string& v : m.received->values()) n += v[0] == prefix;
    return n;
  };
  const size_t xa_a = count(a, 'a'), xa_b = count(b, 'a');
  std::cout << "x.a to A: " << xa_a << ", to B: " << xa_b
            << "; x.b to A: " << count(a, 'b') << ", to B: " << count(b, 'b')
            << "\n";
  EXPECT_EQ(count(b, 'b'), 0u) << "B is not subscribed to x.b";
  constexpr size_t kXa = kMessages / 2;
  EXPECT_EQ(xa_a + xa_b, kXa);
  for (const size_t share : {xa_a, xa_b}) {
    EXPECT_GE(share, kXa * 40 / 100) << "A got " << xa_a << ", B " << xa_b;
    EXPECT_LE(share, kXa * 60 / 100) << "A got " << xa_a << ", B " << xa_b;
  }
}

TEST_F(QueueGroupTest, RemainingMembersTakeOverWhenOneLeaves) {
  constexpr int kMessages = 100;
  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto c1, NewClient("c1"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto c2, NewClient("c2"));
  SIFT_ASSERT_OK_AND_ASSIGN(Member stays, Join(*c1, "work", "pool"));
  SIFT_ASSERT_OK_AND_ASSIGN(Member leaves, Join(*c2, "work", "pool"));
  SIFT_ASSERT_OK(leaves.sub->Unsubscribe());

  std::set<std::string> all;
  for (int i = 0; i < kMessages; ++i) {
    const std::string payload = absl::StrCat(i);
    all.insert(payload);
    SIFT_ASSERT_OK(i + 1 == kMessages
                       ? publisher->PublishConfirmed("work", payload)
                       : publisher->Publish("work", payload));
  }
  EXPECT_EQ(stays.received->WaitFor(kMessages, kWaitAll),
            static_cast<size_t>(kMessages));
  CheckPartition({&stays}, all, "pool");
  EXPECT_EQ(leaves.received->size(), 0u);
}

// Joins `group` on `pattern` over a raw connection that then closes without
// BYE (linger 0), as a crashed client would. siftd learns of the closed
// connection from ZeroMQ's socket monitor and ends the session at once.
absl::Status AddVanishedMember(const std::string& endpoint,
                               const std::string& pattern,
                               const std::string& group) {
  RawDealer doomed(endpoint);
  absl::StatusOr<wire::Header> welcome = doomed.Hello();
  if (!welcome.ok()) return welcome.status();
  absl::StatusOr<wire::Header> ok =
      doomed.Call(SubHeader(2, 1, pattern, group));
  if (!ok.ok()) return ok.status();
  if (!ok->has_ok()) {
    return absl::InternalError(absl::StrCat("SUB refused: ",
                                            ok->DebugString()));
  }
  doomed.CloseNow();
  return absl::OkStatus();
}

// Waits (bounded) until siftd holds `clients` sessions.
void WaitForClients(Client& client, uint64_t clients) {
  uint64_t now = 0;
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<BrokerStats> stats = client.Stats();
    ASSERT_TRUE(stats.ok()) << stats.status();
    now = stats->clients();
    if (now == clients) return;
    absl::SleepFor(absl::Milliseconds(10));
  }
  FAIL() << "siftd holds " << now << " sessions, expected " << clients;
}

// A member that vanishes without BYE (linger-0 close) leaves the group as
// soon as its connection closes: nothing is routed to it, nothing is lost.
// (Before siftd watched its connections, the first deliveries to it were
// lost and counted as client_gone.)
TEST_F(QueueGroupTest, VanishedMemberIsSkippedAndItsLossesCounted) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto publisher, NewClient("publisher"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto live_client, NewClient("live"));
  SIFT_ASSERT_OK_AND_ASSIGN(Member live, Join(*live_client, "task", "pool"));
  SIFT_ASSERT_OK(AddVanishedMember(siftd_->endpoint(), "task", "pool"));
  WaitForClients(*publisher, 2);

  constexpr int kMessages = 100;
  std::set<std::string> all;
  for (int i = 0; i < kMessages; ++i) {
    const std::string payload = absl::StrCat("m", i);
    all.insert(payload);
    SIFT_ASSERT_OK(i + 1 == kMessages
                       ? publisher->PublishConfirmed("task", payload)
                       : publisher->Publish("task", payload));
  }
  EXPECT_EQ(live.received->WaitFor(kMessages, kWaitAll),
            static_cast<size_t>(kMessages));
  const std::vector<std::string> values = live.received->values();
  EXPECT_EQ(std::set<std::string>(values.begin(), values.end()), all);
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats stats, publisher->Stats());
  EXPECT_EQ(Drops(stats, "client_gone"), 0u) << stats.DebugString();
  EXPECT_TRUE(siftd_->WaitForLog("reason=\"connection closed\"",
                                 absl::Seconds(5)));
}

// A BATCH published right after a member vanished goes whole to the live
// member: the broker ended the vanished member's session when its
// connection closed, before any entry could be routed to it.
TEST_F(QueueGroupTest, MemberFoundGoneMidBatchGetsNoMoreOfIt) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto live_client, NewClient("live"));
  SIFT_ASSERT_OK_AND_ASSIGN(Member live, Join(*live_client, "job", "pool"));
  RawDealer publisher(siftd_->endpoint());
  ASSERT_TRUE(publisher.Hello().ok());
  SIFT_ASSERT_OK(AddVanishedMember(siftd_->endpoint(), "job", "pool"));
  WaitForClients(*live_client, 2);

  constexpr int kEntries = 20;
  std::string body;
  protocol::BatchWriter writer(&body);
  std::set<std::string> all;
  for (int i = 0; i < kEntries; ++i) {
    const std::string payload = absl::StrCat("b", i);
    all.insert(payload);
    const bool last = i + 1 == kEntries;
    writer.AppendPub(last ? 9 : 0, "job", "", last, "", payload);
  }
  publisher.Send(BatchHeader(8, kEntries), body);
  absl::StatusOr<wire::Header> confirmed =
      publisher.AwaitReply(9, absl::Seconds(10));
  ASSERT_TRUE(confirmed.ok() && confirmed->has_ok()) << confirmed.status();

  absl::StatusOr<wire::Header> stats =
      publisher.Call(StatsHeader(10), std::nullopt, absl::Seconds(10));
  ASSERT_TRUE(stats.ok() && stats->has_stats_reply()) << stats.status();
  EXPECT_EQ(Drops(stats->stats_reply(), "client_gone"), 0u)
      << stats->DebugString();
  EXPECT_EQ(live.received->WaitFor(kEntries, kWaitAll),
            static_cast<size_t>(kEntries));
  const std::vector<std::string> values = live.received->values();
  EXPECT_EQ(std::set<std::string>(values.begin(), values.end()), all);
  publisher.CloseNow();
}

}  // namespace
}  // namespace sift::test
