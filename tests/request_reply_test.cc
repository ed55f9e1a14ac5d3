// Request/reply through a real siftd: a responder answers on reply_to, the
// requester's Request() returns the reply; no responder means
// DeadlineExceeded; another client's inbox cannot be subscribed to.
#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "tests/siftd_process.h"
#include "tests/test_util.h"

namespace sift::test {
namespace {

class RequestReplyTest : public ::testing::Test {
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

  // Subscribes `responder` to `topic` (optionally in a queue group) and
  // answers every request with "echo:<payload>" on its reply_to.
  static absl::StatusOr<std::unique_ptr<Subscription>> Serve(
      Client* responder, const std::string& topic,
      const std::string& group = "") {
    SubscribeOptions options;
    options.queue_group = group;
    options.callback = [responder](const Message& msg) {
      if (msg.reply_to().empty()) return;
      absl::Status status = responder->Publish(
          msg.reply_to(),
          absl::StrCat("echo:", absl::string_view(msg.payload().data(),
                                                  msg.payload().size())));
      if (!status.ok()) std::cerr << "reply failed: " << status << "\n";
    };
    return responder->Subscribe(topic, options);
  }

  std::unique_ptr<SiftdProcess> siftd_;
};

TEST_F(RequestReplyTest, RequestGetsTheReply) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto responder, NewClient("responder"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto requester, NewClient("requester"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto service, Serve(responder.get(), "svc.echo"));
  EXPECT_EQ(requester->inbox_prefix(),
            absl::StrCat("_INBOX.", requester->client_id()));
  for (int i = 0; i < 20; ++i) {
    const std::string payload = absl::StrCat("hello ", i);
    SIFT_ASSERT_OK_AND_ASSIGN(
        Message reply,
        requester->Request("svc.echo", payload, absl::Seconds(10)));
    EXPECT_EQ(reply.payload(), "echo:" + payload);
    EXPECT_TRUE(absl::StartsWith(
        absl::string_view(reply.topic().data(), reply.topic().size()),
        requester->inbox_prefix()))
        << reply.topic();
  }
}

TEST_F(RequestReplyTest, ConcurrentRequestsGetTheirOwnReplies) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  SIFT_ASSERT_OK_AND_ASSIGN(auto responder, NewClient("responder"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto requester, NewClient("requester"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto service, Serve(responder.get(), "svc.echo"));
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string payload = absl::StrCat("t", t, "-", i);
        absl::StatusOr<Message> reply =
            requester->Request("svc.echo", payload, absl::Seconds(10));
        if (!reply.ok()) {
          ADD_FAILURE() << payload << ": " << reply.status();
          continue;
        }
        if (reply->payload() == "echo:" + payload) {
          ++good;
        } else {
          ADD_FAILURE() << payload << " got " << reply->payload();
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(good.load(), kThreads * kPerThread);
}

TEST_F(RequestReplyTest, QueueGroupOfRespondersAnswersEachRequestOnce) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto r1, NewClient("r1"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto r2, NewClient("r2"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto requester, NewClient("requester"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto s1, Serve(r1.get(), "svc.pool", "pool"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto s2, Serve(r2.get(), "svc.pool", "pool"));
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats before, requester->Stats());
  constexpr int kRequests = 30;
  for (int i = 0; i < kRequests; ++i) {
    const std::string payload = absl::StrCat("job ", i);
    SIFT_ASSERT_OK_AND_ASSIGN(
        Message reply,
        requester->Request("svc.pool", payload, absl::Seconds(10)));
    EXPECT_EQ(reply.payload(), "echo:" + payload);
  }
  // Each request went to one responder and produced one reply: exactly
  // 2 DELIVERs per request once the last reply is in. The reply is delivered
  // before the broker reads our STATS (same connection, in order).
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats after, requester->Stats());
  EXPECT_EQ(after.messages_out() - before.messages_out(),
            static_cast<uint64_t>(2 * kRequests));
}

TEST_F(RequestReplyTest, RequestWithoutResponderTimesOut) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto requester, NewClient("requester"));
  const absl::Time start = absl::Now();
  absl::StatusOr<Message> reply =
      requester->Request("svc.nobody.home", "anyone?", absl::Milliseconds(500));
  const absl::Duration elapsed = absl::Now() - start;
  ASSERT_FALSE(reply.ok()) << "unexpected reply " << reply->payload();
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded)
      << reply.status();
  // Bounded, not a speed check: the call must not hang far past its timeout.
  EXPECT_LT(elapsed, absl::Seconds(30));
  // The client stays usable.
  SIFT_ASSERT_OK(requester->PublishConfirmed("still.alive", "yes"));
}

TEST_F(RequestReplyTest, AnotherClientsInboxIsForbidden) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto owner, NewClient("owner"));
  SIFT_ASSERT_OK_AND_ASSIGN(auto snoop, NewClient("snoop"));
  ASSERT_FALSE(owner->inbox_prefix().empty());
  ASSERT_NE(owner->inbox_prefix(), snoop->inbox_prefix());
  for (const std::string& pattern :
       {owner->inbox_prefix(), owner->inbox_prefix() + ".>",
        owner->inbox_prefix() + ".*", owner->inbox_prefix() + ".abc"}) {
    absl::StatusOr<std::unique_ptr<Subscription>> sub =
        snoop->Subscribe(pattern);
    ASSERT_FALSE(sub.ok()) << "subscribed to " << pattern;
    EXPECT_EQ(sub.status().code(), absl::StatusCode::kPermissionDenied)
        << pattern << ": " << sub.status();
  }
  // A client may subscribe below its own inbox.
  SIFT_ASSERT_OK_AND_ASSIGN(auto own,
                            snoop->Subscribe(snoop->inbox_prefix() + ".mine"));
  SIFT_ASSERT_OK(
      owner->PublishConfirmed(snoop->inbox_prefix() + ".mine", "hi"));
  SIFT_ASSERT_OK_AND_ASSIGN(Message msg, own->Next(absl::Seconds(10)));
  EXPECT_EQ(msg.payload(), "hi");
}

}  // namespace
}  // namespace sift::test
