// Client liveness against a real siftd started with a short
// --client_timeout_ms: a silent raw client is dropped (and told
// HELLO_REQUIRED when it speaks again), while library clients keep their
// sessions by pinging often enough.
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"
#include "tests/raw_dealer.h"
#include "tests/siftd_process.h"
#include "tests/test_util.h"

namespace sift::test {
namespace {

constexpr int kTimeoutMs = 600;

class LivenessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SiftdOptions options;
    options.extra_flags = {absl::StrCat("--client_timeout_ms=", kTimeoutMs)};
    auto siftd = SiftdProcess::Start(options);
    ASSERT_TRUE(siftd.ok()) << siftd.status();
    siftd_ = *std::move(siftd);
  }
  void TearDown() override {
    if (HasFailure() && siftd_ != nullptr) {
      std::cerr << "--- siftd log tail ---\n" << siftd_->LogTail() << "\n";
    }
  }

  absl::StatusOr<std::unique_ptr<Client>> NewClient(
      const std::string& name,
      absl::Duration ping_interval = ClientOptions().ping_interval) {
    ClientOptions options;
    options.endpoint = siftd_->endpoint();
    options.name = name;
    options.ping_interval = ping_interval;
    return Client::Connect(options);
  }

  // Both clients idle for several broker timeouts (a wait for time to pass,
  // not a speed check); their PINGs must keep both sessions.
  void CheckIdleClientsSurvive(absl::Duration ping_interval) {
    SIFT_ASSERT_OK_AND_ASSIGN(auto subscriber,
                              NewClient("idle-subscriber", ping_interval));
    SIFT_ASSERT_OK_AND_ASSIGN(auto sub, subscriber->Subscribe("idle.>"));
    SIFT_ASSERT_OK_AND_ASSIGN(auto publisher,
                              NewClient("idle-publisher", ping_interval));
    absl::SleepFor(absl::Milliseconds(4 * kTimeoutMs));
    SIFT_ASSERT_OK(publisher->PublishConfirmed("idle.check", "still here"));
    SIFT_ASSERT_OK_AND_ASSIGN(Message msg, sub->Next(absl::Seconds(10)));
    EXPECT_EQ(msg.payload(), "still here");
    EXPECT_EQ(subscriber->reconnects(), 0u);
    EXPECT_EQ(publisher->reconnects(), 0u);
    EXPECT_EQ(siftd_->ReadLog().find("reason=timeout"), std::string::npos)
        << "a library client was dropped as silent";
  }

  std::unique_ptr<SiftdProcess> siftd_;
};

TEST_F(LivenessTest, SilentClientIsDroppedAndToldHelloRequired) {
  SIFT_ASSERT_OK_AND_ASSIGN(auto observer, NewClient("observer"));
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats base, observer->Stats());

  RawDealer silent(siftd_->endpoint());
  absl::StatusOr<wire::Header> welcome = silent.Hello();
  ASSERT_TRUE(welcome.ok() && welcome->has_welcome());
  EXPECT_EQ(welcome->welcome().client_timeout_ms(),
            static_cast<uint32_t>(kTimeoutMs));
  ASSERT_TRUE(silent.Call(SubHeader(2, 1, "silent.>")).ok());
  SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats joined, observer->Stats());
  EXPECT_EQ(joined.clients(), base.clients() + 1);

  // Wait (bounded) for the broker to drop the silent session.
  BrokerStats now = joined;
  for (int i = 0; i < 200 && now.clients() != base.clients(); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    SIFT_ASSERT_OK_AND_ASSIGN(now, observer->Stats());
  }
  EXPECT_EQ(now.clients(), base.clients()) << now.DebugString();
  EXPECT_EQ(now.subscriptions(), base.subscriptions()) << now.DebugString();
  EXPECT_TRUE(siftd_->WaitForLog("reason=timeout", absl::Seconds(5)))
      << "no log line for the timed-out client";

  // Speaking again: the session is gone.
  absl::StatusOr<wire::Header> reply = silent.Call(PingHeader(3));
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_TRUE(reply->has_error()) << reply->DebugString();
  EXPECT_EQ(reply->error().code(), wire::HELLO_REQUIRED);
  silent.CloseNow();
}

// ClientOptions::ping_interval defaults to 5 s; the client must lower it to
// fit the broker's client_timeout_ms (announced in WELCOME) from the start.
TEST_F(LivenessTest, LibraryClientsWithDefaultPingIntervalStayConnected) {
  CheckIdleClientsSurvive(ClientOptions().ping_interval);
}

TEST_F(LivenessTest, LibraryClientsWithShortPingIntervalStayConnected) {
  CheckIdleClientsSurvive(absl::Milliseconds(100));
}

}  // namespace
}  // namespace sift::test
