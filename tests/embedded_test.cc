// The broker embedded in the test process: clients reach it over inproc://
// (sharing its ZeroMQ context) and over tcp:// at the same time.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/config/config.h"
#include "broker/embedded/embedded_broker.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace sift::test {
namespace {

constexpr char kInproc[] = "inproc://sift-test";

absl::StatusOr<std::unique_ptr<EmbeddedBroker>> StartBroker() {
  Config config;
  config.endpoints = {kInproc, "tcp://127.0.0.1:0"};
  return EmbeddedBroker::Start(config);
}

std::string TcpEndpoint(const EmbeddedBroker& broker) {
  for (const std::string& endpoint : broker.endpoints()) {
    if (absl::StartsWith(endpoint, "tcp://")) return endpoint;
  }
  return "";
}

absl::StatusOr<std::unique_ptr<Client>> InprocClient(EmbeddedBroker& broker,
                                                     const std::string& name) {
  ClientOptions options;
  options.endpoint = kInproc;
  options.zmq_context = broker.zmq_context();
  options.name = name;
  return Client::Connect(options);
}

TEST(EmbeddedBrokerTest, InprocAndTcpClientsShareOneBroker) {
  SIFT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<EmbeddedBroker> broker,
                            StartBroker());
  ASSERT_NE(broker->zmq_context(), nullptr);
  const std::string tcp = TcpEndpoint(*broker);
  ASSERT_FALSE(tcp.empty()) << "no tcp endpoint reported";
  EXPECT_FALSE(absl::EndsWith(tcp, ":0")) << "port 0 not resolved: " << tcp;

  {
    SIFT_ASSERT_OK_AND_ASSIGN(auto local, InprocClient(*broker, "local"));
    ClientOptions remote_options;
    remote_options.endpoint = tcp;
    remote_options.name = "remote";
    SIFT_ASSERT_OK_AND_ASSIGN(auto remote, Client::Connect(remote_options));

    SIFT_ASSERT_OK_AND_ASSIGN(auto local_sub, local->Subscribe("app.>"));
    SIFT_ASSERT_OK_AND_ASSIGN(auto remote_sub, remote->Subscribe("app.*"));

    // Published over inproc, received over inproc and over tcp.
    SIFT_ASSERT_OK(local->PublishConfirmed("app.event", "from-inproc"));
    SIFT_ASSERT_OK_AND_ASSIGN(Message m1, local_sub->Next(absl::Seconds(10)));
    EXPECT_EQ(m1.payload(), "from-inproc");
    EXPECT_EQ(m1.topic(), "app.event");
    SIFT_ASSERT_OK_AND_ASSIGN(Message m2, remote_sub->Next(absl::Seconds(10)));
    EXPECT_EQ(m2.payload(), "from-inproc");

    // And the other way round.
    SIFT_ASSERT_OK(remote->PublishConfirmed("app.reply", "from-tcp"));
    SIFT_ASSERT_OK_AND_ASSIGN(Message m3, local_sub->Next(absl::Seconds(10)));
    EXPECT_EQ(m3.payload(), "from-tcp");
    SIFT_ASSERT_OK_AND_ASSIGN(Message m4, remote_sub->Next(absl::Seconds(10)));
    EXPECT_EQ(m4.payload(), "from-tcp");

    // Request/reply across the two transports.
    SubscribeOptions serve;
    Client* responder = local.get();
    serve.callback = [responder](const Message& msg) {
      (void)responder->Publish(msg.reply_to(), msg.payload());
    };
    SIFT_ASSERT_OK_AND_ASSIGN(auto service,
                              local->Subscribe("svc.echo", serve));
    SIFT_ASSERT_OK_AND_ASSIGN(
        Message reply, remote->Request("svc.echo", "ping", absl::Seconds(10)));
    EXPECT_EQ(reply.payload(), "ping");

    SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats stats, remote->Stats());
    EXPECT_EQ(stats.clients(), 2u) << stats.DebugString();
    EXPECT_GE(stats.messages_in(), 3u);
    // Clients close before the broker stops (see EmbeddedBroker::Stop).
    service.reset();
    local_sub.reset();
    remote_sub.reset();
    local->Close();
    remote->Close();
  }
  // Bounded: Stop() must return (the test's own timeout catches a hang; this
  // is not a speed check).
  const absl::Time start = absl::Now();
  broker->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  broker->Stop();  // idempotent
}

TEST(EmbeddedBrokerTest, StopWithClientsStillConnectedReturns) {
  SIFT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<EmbeddedBroker> broker,
                            StartBroker());
  ClientOptions options;
  options.endpoint = TcpEndpoint(*broker);
  options.reconnect = false;
  SIFT_ASSERT_OK_AND_ASSIGN(auto remote, Client::Connect(options));
  SIFT_ASSERT_OK_AND_ASSIGN(auto sub, remote->Subscribe("a.b"));
  broker->Stop();
  // The client notices the broker is gone; it must not hang.
  absl::StatusOr<Message> msg = sub->Next(absl::Milliseconds(200));
  EXPECT_FALSE(msg.ok());
}

TEST(EmbeddedBrokerTest, RestartOnTheSameInprocName) {
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    SIFT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<EmbeddedBroker> broker,
                              StartBroker());
    SIFT_ASSERT_OK_AND_ASSIGN(auto client, InprocClient(*broker, "c"));
    SIFT_ASSERT_OK_AND_ASSIGN(auto sub, client->Subscribe("r"));
    SIFT_ASSERT_OK(client->PublishConfirmed("r", "x"));
    SIFT_ASSERT_OK(sub->Next(absl::Seconds(10)));
    sub.reset();
    client->Close();
    broker->Stop();
  }
}

TEST(EmbeddedBrokerTest, BadEndpointIsAnError) {
  Config config;
  config.endpoints = {"bogus://nowhere"};
  absl::StatusOr<std::unique_ptr<EmbeddedBroker>> broker =
      EmbeddedBroker::Start(config);
  EXPECT_FALSE(broker.ok());
}

}  // namespace
}  // namespace sift::test
