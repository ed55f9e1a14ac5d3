// The bounded queue behind Subscription::Next(), through a real siftd: a
// subscriber that does not call Next() keeps exactly its bound (in messages
// or in payload bytes), counts every other message in dropped(), and Next()
// reports the drops once, after the messages that arrived before them.
// Callback subscriptions on the same client are not bounded.
#include <atomic>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "tests/siftd_process.h"
#include "tests/test_util.h"

namespace sift::test {
namespace {

// Generous bound for deliveries to arrive; only reached on failure.
constexpr absl::Duration kDeliveryTimeout = absl::Seconds(10);

class ClientQueueTest : public ::testing::Test {
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

  absl::StatusOr<std::unique_ptr<Client>> NewClient(ClientOptions options) {
    options.endpoint = siftd_->endpoint();
    return Client::Connect(options);
  }

  std::unique_ptr<SiftdProcess> siftd_;
};

// Polls until `done()` or kDeliveryTimeout; returns done().
template <typename Done>
bool WaitUntil(Done done) {
  return PollUntil(kDeliveryTimeout, done, absl::Milliseconds(5));
}

TEST_F(ClientQueueTest, SlowNextSubscriberKeepsTheBoundAndCountsTheRest) {
  constexpr int kBound = 100;
  constexpr int kPublished = 1000;
  ClientOptions options;
  options.name = "slow-subscriber";
  options.subscription_queue_max_messages = kBound;
  SIFT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> subscriber,
                            NewClient(options));
  SIFT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Subscription> slow,
                            subscriber->Subscribe("feed"));
  // A callback subscription on the same client: it has no queue to bound.
  std::atomic<int> called{0};
  SubscribeOptions with_callback;
  with_callback.callback = [&called](const Message&) { called.fetch_add(1); };
  SIFT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Subscription> fast,
                            subscriber->Subscribe("feed", with_callback));

  SIFT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> publisher,
                            NewClient({.name = "publisher"}));
  for (int i = 0; i < kPublished; ++i) {
    SIFT_ASSERT_OK(publisher->PublishConfirmed("feed", absl::StrCat("m", i)));
  }
  // All routed; wait until the subscriber has received them all. The queue
  // fills first, so every later message is a drop.
  EXPECT_TRUE(WaitUntil([&] {
    return slow->dropped() >= kPublished - kBound &&
           called.load() >= kPublished;
  })) << "dropped "
      << slow->dropped() << ", callback saw " << called.load();
  EXPECT_EQ(slow->dropped(), uint64_t{kPublished - kBound});
  EXPECT_EQ(called.load(), kPublished);
  EXPECT_EQ(fast->dropped(), 0u);

  for (int i = 0; i < kBound; ++i) {
    absl::StatusOr<Message> m = slow->Next(kDeliveryTimeout);
    ASSERT_TRUE(m.ok()) << "message " << i << ": " << m.status();
    EXPECT_EQ(m->payload(), absl::StrCat("m", i));
  }
  absl::StatusOr<Message> gap = slow->Next(kDeliveryTimeout);
  ASSERT_TRUE(absl::IsResourceExhausted(gap.status())) << gap.status();
  EXPECT_NE(gap.status().message().find("900 messages were dropped"),
            std::string_view::npos)
      << gap.status();
  absl::StatusOr<Message> none = slow->Next(absl::Milliseconds(100));
  EXPECT_TRUE(absl::IsDeadlineExceeded(none.status())) << none.status();
  EXPECT_EQ(slow->dropped(), uint64_t{kPublished - kBound});

  // With room again, messages queue as before.
  SIFT_ASSERT_OK(publisher->PublishConfirmed("feed", "after"));
  SIFT_ASSERT_OK_AND_ASSIGN(Message after, slow->Next(kDeliveryTimeout));
  EXPECT_EQ(after.payload(), "after");
  EXPECT_EQ(slow->dropped(), uint64_t{kPublished - kBound});
}

TEST_F(ClientQueueTest, ByteBoundCountsPayloadBytes) {
  constexpr int kPayloadBytes = 100;
  constexpr int kFits = 10;
  constexpr int kPublished = 50;
  ClientOptions options;
  options.name = "byte-bounded";
  options.subscription_queue_max_messages = 0;  // no bound in messages
  options.subscription_queue_max_bytes = kFits * kPayloadBytes;
  SIFT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> subscriber,
                            NewClient(options));
  SIFT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Subscription> sub,
                            subscriber->Subscribe("bulk.>"));
  SIFT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> publisher,
                            NewClient({.name = "publisher"}));
  for (int i = 0; i < kPublished; ++i) {
    SIFT_ASSERT_OK(publisher->PublishConfirmed(
        absl::StrCat("bulk.", i), std::string(kPayloadBytes, 'a' + i % 26)));
  }
  EXPECT_TRUE(WaitUntil([&] { return sub->dropped() >= kPublished - kFits; }))
      << "dropped " << sub->dropped();
  EXPECT_EQ(sub->dropped(), uint64_t{kPublished - kFits});
  for (int i = 0; i < kFits; ++i) {
    absl::StatusOr<Message> m = sub->Next(kDeliveryTimeout);
    ASSERT_TRUE(m.ok()) << "message " << i << ": " << m.status();
    EXPECT_EQ(m->topic(), absl::StrCat("bulk.", i));
  }
  absl::StatusOr<Message> gap = sub->Next(kDeliveryTimeout);
  EXPECT_TRUE(absl::IsResourceExhausted(gap.status())) << gap.status();
}

TEST_F(ClientQueueTest, UnsubscribeStillEndsNextWithCancelled) {
  ClientOptions options;
  options.subscription_queue_max_messages = 1;
  SIFT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> client, NewClient(options));
  SIFT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Subscription> sub,
                            client->Subscribe("x"));
  SIFT_ASSERT_OK(client->PublishConfirmed("x", "1"));
  SIFT_ASSERT_OK(client->PublishConfirmed("x", "2"));
  EXPECT_TRUE(WaitUntil([&] { return sub->dropped() >= 1; }));
  SIFT_ASSERT_OK(sub->Unsubscribe());
  SIFT_ASSERT_OK_AND_ASSIGN(Message first, sub->Next(kDeliveryTimeout));
  EXPECT_EQ(first.payload(), "1");
  EXPECT_TRUE(absl::IsResourceExhausted(sub->Next(kDeliveryTimeout).status()));
  EXPECT_TRUE(absl::IsCancelled(sub->Next(kDeliveryTimeout).status()));
  EXPECT_EQ(sub->dropped(), 1u);
}

}  // namespace
}  // namespace sift::test
