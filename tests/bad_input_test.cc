// Bad input against a real siftd. Every test runs a healthy publisher and
// subscriber (client library) throughout; TearDown checks that siftd is still
// running and that the healthy subscriber got every message the healthy
// publisher sent, in order. Meanwhile raw ZeroMQ DEALERs and plain TCP
// sockets send what a broken or hostile client would.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
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

constexpr uint64_t kMaxPayload = 1024;
constexpr uint64_t kMaxSubs = 50;
constexpr absl::Duration kReplyTimeout = absl::Seconds(10);

// The next ERROR the dealer receives (skipping DELIVER, PING, ...).
absl::StatusOr<wire::Header> NextError(RawDealer& dealer,
                                       absl::Duration timeout = kReplyTimeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (int i = 0; i < 100000; ++i) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    std::optional<RawReply> reply = dealer.Recv(left);
    if (!reply.has_value()) break;
    if (reply->header.has_value() && reply->header->has_error()) {
      return *reply->header;
    }
  }
  return absl::DeadlineExceededError("no ERROR received");
}

// Protobuf wire encoding by hand, for headers protobuf would not produce.
std::string Varint(uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}
std::string Tag(uint32_t field, uint32_t wire_type) {
  return Varint((uint64_t{field} << 3) | wire_type);
}

// Expects `reply` to be an ERROR with `code` that echoes `request_id`.
void ExpectError(const absl::StatusOr<wire::Header>& reply,
                 wire::ErrorCode code, uint64_t request_id,
                 const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_TRUE(reply->has_error()) << reply->DebugString();
  EXPECT_EQ(reply->error().code(), code)
      << "got " << wire::ErrorCode_Name(reply->error().code()) << ": "
      << reply->error().message();
  EXPECT_EQ(reply->request_id(), request_id);
  EXPECT_FALSE(reply->error().message().empty());
}

// The session still works: PING is answered by PONG.
void ExpectAlive(RawDealer& dealer, uint64_t request_id) {
  absl::StatusOr<wire::Header> pong = dealer.Call(PingHeader(request_id));
  ASSERT_TRUE(pong.ok()) << "no PONG after bad input: " << pong.status();
  EXPECT_TRUE(pong->has_pong()) << pong->DebugString();
}

// Connects a plain TCP socket (no ZeroMQ) to 127.0.0.1:port.
int ConnectTcp(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SiftdOptions options;
    options.extra_flags = {
        absl::StrCat("--max_payload_bytes=", kMaxPayload),
        absl::StrCat("--max_subscriptions_per_client=", kMaxSubs)};
    auto siftd = SiftdProcess::Start(options);
    ASSERT_TRUE(siftd.ok()) << siftd.status();
    siftd_ = *std::move(siftd);

    SIFT_ASSERT_OK_AND_ASSIGN(healthy_pub_, NewClient("healthy-pub"));
    SIFT_ASSERT_OK_AND_ASSIGN(healthy_client_, NewClient("healthy-sub"));
    SubscribeOptions options_sub;
    std::shared_ptr<Collector> received = healthy_received_;
    options_sub.callback = [received](const Message& msg) {
      received->Add(std::string(msg.payload()));
    };
    SIFT_ASSERT_OK_AND_ASSIGN(
        healthy_sub_, healthy_client_->Subscribe("healthy.>", options_sub));
    // Publishes continuously until TearDown (bounded in count).
    publisher_thread_ = std::thread([this] {
      for (int i = 0; i < kMaxHealthy && !stop_.load(); ++i) {
        absl::Status status =
            healthy_pub_->Publish("healthy.tick", absl::StrCat(i));
        if (!status.ok()) {
          ADD_FAILURE() << "healthy publish " << i << ": " << status;
          break;
        }
        healthy_sent_.store(i + 1);
        absl::SleepFor(absl::Microseconds(500));
      }
    });
    // Let some healthy traffic flow before the bad input starts.
    EXPECT_GE(healthy_received_->WaitFor(10, absl::Seconds(10)), 10u);
  }

  void TearDown() override {
    stop_.store(true);
    if (publisher_thread_.joinable()) publisher_thread_.join();
    if (siftd_ == nullptr) return;
    // siftd survived everything.
    EXPECT_TRUE(siftd_->IsRunning())
        << "siftd died: exit " << siftd_->exit_code().value_or(-1);
    if (siftd_->IsRunning()) {
      EXPECT_EQ(kill(siftd_->pid(), 0), 0);
    }
    if (healthy_pub_ != nullptr && healthy_sub_ != nullptr) {
      CheckHealthyTraffic();
    }
    if (HasFailure()) {
      std::cerr << "--- siftd log tail ---\n" << siftd_->LogTail(8000) << "\n";
    }
  }

  // The healthy subscriber got 0..sent-1 in order, then the sentinel.
  void CheckHealthyTraffic() {
    const int sent = healthy_sent_.load();
    absl::Status fence =
        healthy_pub_->PublishConfirmed("healthy.end", "end", absl::Seconds(10));
    EXPECT_TRUE(fence.ok()) << "healthy sentinel: " << fence;
    const size_t want = static_cast<size_t>(sent) + 1;
    EXPECT_EQ(healthy_received_->WaitFor(want, absl::Seconds(30)), want)
        << "healthy subscriber missed messages (sent " << sent << ")";
    std::vector<std::string> got = healthy_received_->values();
    int next = 0;
    for (const std::string& payload : got) {
      if (payload == "end") break;
      int seq = -1;
      if (!absl::SimpleAtoi(payload, &seq) || seq != next) {
        ADD_FAILURE() << "healthy message " << next << " out of order: got "
                      << payload;
        return;
      }
      ++next;
    }
    EXPECT_EQ(next, sent);
    EXPECT_EQ(got.size(), want);
    EXPECT_TRUE(!got.empty() && got.back() == "end");
  }

  absl::StatusOr<std::unique_ptr<Client>> NewClient(const std::string& name) {
    ClientOptions options;
    options.endpoint = siftd_->endpoint();
    options.name = name;
    return Client::Connect(options);
  }

  // A raw DEALER that completed HELLO.
  std::unique_ptr<RawDealer> Greeted() {
    auto dealer = std::make_unique<RawDealer>(siftd_->endpoint());
    absl::StatusOr<wire::Header> welcome = dealer->Hello();
    EXPECT_TRUE(welcome.ok() && welcome->has_welcome())
        << (welcome.ok() ? welcome->DebugString()
                         : welcome.status().ToString());
    return dealer;
  }

  // ---- The cases; each is a TEST below and all run in EverythingAtOnce.

  void GarbageFrame() {
    auto dealer = Greeted();
    // A varint that never ends, and a tag with the invalid wire type 7.
    dealer->SendFrames({std::string(11, '\xff')});
    ExpectError(NextError(*dealer), wire::BAD_FRAME, 0, "unterminated varint");
    dealer->SendFrames({std::string("\x0f\x01\x02\x03", 4)});
    ExpectError(NextError(*dealer), wire::BAD_FRAME, 0, "wire type 7");
    dealer->SendFrames({"this is not a protobuf \xff\xfe", "payload"});
    ExpectError(NextError(*dealer), wire::BAD_FRAME, 0, "text + payload");
    ExpectAlive(*dealer, 900);
    EXPECT_TRUE(siftd_->WaitForLog("BAD_FRAME", absl::Seconds(10)))
        << "no log line for the bad frame";
  }

  void EmptyMessage() {
    auto dealer = Greeted();
    dealer->SendFrames({""});
    absl::StatusOr<wire::Header> reply = NextError(*dealer);
    ASSERT_TRUE(reply.ok())
        << "no ERROR for an empty message: " << reply.status();
    // An empty frame 0 parses as a Header naming no command.
    EXPECT_TRUE(reply->error().code() == wire::BAD_FRAME ||
                reply->error().code() == wire::UNKNOWN_COMMAND)
        << reply->DebugString();
    // Empty header and empty payload.
    dealer->SendFrames({"", ""});
    reply = NextError(*dealer);
    ASSERT_TRUE(reply.ok())
        << "no ERROR for two empty frames: " << reply.status();
    EXPECT_TRUE(reply->error().code() == wire::BAD_FRAME ||
                reply->error().code() == wire::UNKNOWN_COMMAND)
        << reply->DebugString();
    ExpectAlive(*dealer, 901);
  }

  void TruncatedHeader() {
    auto dealer = Greeted();
    const std::string full =
        Serialize(PubHeader(42, "some.long.topic.name.here", true));
    ASSERT_GT(full.size(), 10u);
    for (size_t cut : {full.size() - 1, full.size() - 5, size_t{3}}) {
      dealer->SendFrames({full.substr(0, cut), "payload"});
      absl::StatusOr<wire::Header> reply = NextError(*dealer);
      ASSERT_TRUE(reply.ok()) << "cut at " << cut << ": " << reply.status();
      EXPECT_EQ(reply->error().code(), wire::BAD_FRAME)
          << "cut at " << cut << ": " << reply->DebugString();
      // The request id cannot be trusted from a broken header; 0 or 42.
      EXPECT_TRUE(reply->request_id() == 0 || reply->request_id() == 42);
    }
    ExpectAlive(*dealer, 902);
  }

  void WrongFrameCounts() {
    auto dealer = Greeted();
    dealer->SendFrames({Serialize(PubHeader(11, "frames.one", true))});
    ExpectError(dealer->AwaitReply(11, kReplyTimeout), wire::BAD_FRAME, 11,
                "one-frame PUB");
    dealer->SendFrames(
        {Serialize(PubHeader(12, "frames.three", true)), "a", "b"});
    ExpectError(dealer->AwaitReply(12, kReplyTimeout), wire::BAD_FRAME, 12,
                "three-frame PUB");
    dealer->SendFrames({Serialize(SubHeader(13, 1, "frames.>")), "extra"});
    ExpectError(dealer->AwaitReply(13, kReplyTimeout), wire::BAD_FRAME, 13,
                "two-frame SUB");
    dealer->SendFrames({Serialize(PingHeader(14)), "x", "y", "z"});
    ExpectError(dealer->AwaitReply(14, kReplyTimeout), wire::BAD_FRAME, 14,
                "four-frame PING");
    // A well-formed PUB still works afterwards.
    absl::StatusOr<wire::Header> ok =
        dealer->Call(PubHeader(15, "frames.fine", true), "payload");
    ASSERT_TRUE(ok.ok()) << ok.status();
    EXPECT_TRUE(ok->has_ok()) << ok->DebugString();
  }

  void UnknownCommand() {
    auto dealer = Greeted();
    // Only field 1000 (varint 1): parses, names no command. (A high field
    // number, so that commands added to the oneof later do not collide.)
    dealer->SendFrames({Tag(1000, 0) + Varint(1)});
    ExpectError(NextError(*dealer), wire::UNKNOWN_COMMAND, 0,
                "unknown varint field 1000");
    // request_id 77 and an unknown length-delimited field 1001 (a command a
    // newer protocol might add).
    dealer->SendFrames(
        {Tag(1, 0) + Varint(77) + Tag(1001, 2) + Varint(3) + "abc"});
    ExpectError(dealer->AwaitReply(77, kReplyTimeout), wire::UNKNOWN_COMMAND,
                77, "unknown message field 1001 with request_id");
    // A known command with an extra unknown field (from a newer client) is
    // served: unknown fields are ignored, as protobuf intends.
    dealer->SendFrames({Serialize(PubHeader(76, "forward.compat", true)) +
                            Tag(1002, 0) + Varint(5),
                        "payload"});
    absl::StatusOr<wire::Header> served = dealer->AwaitReply(76, kReplyTimeout);
    ASSERT_TRUE(served.ok()) << served.status();
    EXPECT_TRUE(served->has_ok()) << served->DebugString();
    // A Header with only a request_id.
    wire::Header bare;
    bare.set_request_id(78);
    dealer->Send(bare);
    ExpectError(dealer->AwaitReply(78, kReplyTimeout), wire::UNKNOWN_COMMAND,
                78, "request_id only");
    // Commands only the broker sends are not valid from a client.
    wire::Header deliver;
    deliver.set_request_id(79);
    deliver.mutable_deliver()->set_sid(1);
    deliver.mutable_deliver()->set_topic("a.b");
    dealer->Send(deliver, std::string("payload"));
    absl::StatusOr<wire::Header> reply = dealer->AwaitReply(79, kReplyTimeout);
    ASSERT_TRUE(reply.ok())
        << "no answer to a client-sent DELIVER: " << reply.status();
    EXPECT_TRUE(reply->has_error()) << reply->DebugString();
    ExpectAlive(*dealer, 903);
  }

  void VersionMismatch() {
    RawDealer dealer(siftd_->endpoint());
    absl::StatusOr<wire::Header> reply = dealer.Hello(99, 3);
    ExpectError(reply, wire::VERSION_MISMATCH, 3, "HELLO v99");
    if (reply.ok() && reply->has_error()) {
      EXPECT_TRUE(absl::StrContains(reply->error().message(), "1"))
          << "message should name the supported version: "
          << reply->error().message();
    }
    ExpectError(dealer.Hello(0, 4), wire::VERSION_MISMATCH, 4, "HELLO v0");
    // The right version is still accepted on the same connection.
    absl::StatusOr<wire::Header> welcome = dealer.Hello(1, 5);
    ASSERT_TRUE(welcome.ok()) << welcome.status();
    EXPECT_TRUE(welcome->has_welcome()) << welcome->DebugString();
  }

  void HelloRequired() {
    RawDealer dealer(siftd_->endpoint());
    ExpectError(dealer.Call(SubHeader(21, 1, "x.>")), wire::HELLO_REQUIRED, 21,
                "SUB before HELLO");
    ExpectError(dealer.Call(PubHeader(22, "x.y", true), std::string("p")),
                wire::HELLO_REQUIRED, 22, "PUB before HELLO");
    ExpectError(dealer.Call(StatsHeader(23)), wire::HELLO_REQUIRED, 23,
                "STATS before HELLO");
    ExpectError(dealer.Call(PingHeader(24)), wire::HELLO_REQUIRED, 24,
                "PING before HELLO");
    ExpectError(dealer.Call(UnsubHeader(25, 1)), wire::HELLO_REQUIRED, 25,
                "UNSUB before HELLO");
    absl::StatusOr<wire::Header> welcome = dealer.Hello(1, 26);
    ASSERT_TRUE(welcome.ok()) << welcome.status();
    EXPECT_TRUE(welcome->has_welcome()) << welcome->DebugString();
  }

  void InvalidTopic() {
    auto dealer = Greeted();
    const std::vector<std::string> bad = {
        "",
        "a..b",
        ".a",
        "a.",
        "a.*",
        "a.>",
        "*",
        ">",
        "has space",
        "tab\tx",
        std::string(300, 'x'),
        "t.t.t.t.t.t.t.t.t.t.t.t.t.t.t.t.t.t.t.t",  // 20 tokens
        std::string("nul\0byte", 8),
        "\x7f",
        "caf\xc3\xa9"};
    uint64_t rid = 100;
    for (const std::string& topic : bad) {
      ++rid;
      ExpectError(dealer->Call(PubHeader(rid, topic, true), std::string("p")),
                  wire::INVALID_TOPIC, rid,
                  absl::StrCat("PUB topic \"", topic, "\""));
    }
    ++rid;
    ExpectError(dealer->Call(PubHeader(rid, "fine.topic", true, "bad..reply"),
                             std::string("p")),
                wire::INVALID_TOPIC, rid, "reply_to bad..reply");
    ++rid;
    ExpectError(dealer->Call(PubHeader(rid, "fine.topic", true, "reply.*"),
                             std::string("p")),
                wire::INVALID_TOPIC, rid, "reply_to with wildcard");
    ExpectAlive(*dealer, 904);
  }

  void InvalidPattern() {
    auto dealer = Greeted();
    const std::vector<std::string> bad = {
        "",
        "a..b",
        "a.>.b",
        ">.a",
        ".a",
        "a.",
        "a b",
        "tab\tx",
        std::string(300, 'x'),
        "p.p.p.p.p.p.p.p.p.p.p.p.p.p.p.p.p.p.p.p",  // 20 tokens
        std::string("nul\0byte", 8)};
    uint64_t rid = 200;
    uint64_t sid = 0;
    for (const std::string& pattern : bad) {
      ++rid;
      ++sid;
      ExpectError(dealer->Call(SubHeader(rid, sid, pattern)),
                  wire::INVALID_PATTERN, rid,
                  absl::StrCat("SUB pattern \"", pattern, "\""));
    }
    // Related SUB errors.
    ++rid;
    ExpectError(dealer->Call(SubHeader(rid, 0, "zero.sid")),
                wire::INVALID_REQUEST, rid, "sid 0");
    ++rid;
    ExpectError(dealer->Call(SubHeader(rid, 500, "ok.pattern", "bad group")),
                wire::INVALID_QUEUE_GROUP, rid, "queue group with a space");
    ++rid;
    absl::StatusOr<wire::Header> ok =
        dealer->Call(SubHeader(rid, 501, "ok.pattern"));
    ASSERT_TRUE(ok.ok() && ok->has_ok())
        << (ok.ok() ? ok->DebugString() : ok.status().ToString());
    ++rid;
    ExpectError(dealer->Call(SubHeader(rid, 501, "other.pattern")),
                wire::DUPLICATE_SID, rid, "duplicate sid");
    ++rid;
    ExpectError(dealer->Call(UnsubHeader(rid, 999)), wire::UNKNOWN_SID, rid,
                "unknown sid");
    ExpectAlive(*dealer, 905);
  }

  void PayloadTooLarge() {
    auto dealer = Greeted();
    ExpectError(dealer->Call(PubHeader(31, "big.payload", true),
                             std::string(2000, 'b')),
                wire::PAYLOAD_TOO_LARGE, 31, "2000-byte payload");
    ExpectError(dealer->Call(PubHeader(32, "big.payload", true),
                             std::string(kMaxPayload + 1, 'b')),
                wire::PAYLOAD_TOO_LARGE, 32, "max+1 payload");
    absl::StatusOr<wire::Header> ok = dealer->Call(
        PubHeader(33, "big.payload", true), std::string(kMaxPayload, 'b'));
    ASSERT_TRUE(ok.ok()) << ok.status();
    EXPECT_TRUE(ok->has_ok())
        << "a payload of exactly the limit: " << ok->DebugString();
    // Fire and forget (no confirm): not delivered, counted as a drop.
    auto watcher = Greeted();
    ASSERT_TRUE(watcher->Call(SubHeader(34, 1, "big.>")).ok());
    dealer->Send(PubHeader(0, "big.quiet", false), std::string(2000, 'q'));
    ASSERT_TRUE(
        dealer->Call(PubHeader(35, "big.fence", true), std::string("f")).ok());
    std::optional<wire::Header> delivered;
    for (int i = 0; i < 100 && !delivered.has_value(); ++i) {
      std::optional<RawReply> got = watcher->Recv(kReplyTimeout);
      if (!got.has_value()) break;
      if (got->header.has_value() && got->header->has_deliver()) {
        delivered = got->header;
      }
    }
    ASSERT_TRUE(delivered.has_value()) << "the fence was not delivered";
    EXPECT_EQ(delivered->deliver().topic(), "big.fence")
        << "the oversized message was delivered";
    SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats stats, healthy_pub_->Stats());
    EXPECT_GE(Drops(stats, "payload_too_large"), 3u) << stats.DebugString();
    ExpectAlive(*dealer, 906);
  }

  void RawTcpGarbage() {
    std::mt19937 rng(20261124);
    for (int round = 0; round < 8; ++round) {
      int fd = ConnectTcp(siftd_->port());
      ASSERT_GE(fd, 0) << "connect: " << std::strerror(errno);
      std::string bytes(1000 + 4000 * round, '\0');
      for (char& c : bytes) c = static_cast<char>(rng());
      if (round % 2 == 1) {
        // Start like a ZMTP greeting, then go wrong.
        const char signature[] = {'\xff', 0, 0, 0, 0, 0, 0, 0, 1, '\x7f', 3, 1};
        bytes.replace(0, sizeof(signature),
                      std::string(signature, sizeof(signature)));
      }
      // The broker may close first; a failed send is fine.
      (void)send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      close(fd);
    }
    // Connect and close at once, and connect then half-close.
    int fd = ConnectTcp(siftd_->port());
    if (fd >= 0) close(fd);
    fd = ConnectTcp(siftd_->port());
    if (fd >= 0) {
      shutdown(fd, SHUT_WR);
      close(fd);
    }
    // New clients can still connect.
    auto dealer = Greeted();
    ExpectAlive(*dealer, 907);
  }

  void VanishingClient() {
    // Subscribes to the healthy stream and to a flood, then closes with
    // linger 0 while messages flow to it.
    auto dealer = Greeted();
    ASSERT_TRUE(dealer->Call(SubHeader(41, 1, "healthy.>")).ok());
    ASSERT_TRUE(dealer->Call(SubHeader(42, 2, "flood.>")).ok());
    SIFT_ASSERT_OK_AND_ASSIGN(auto flooder, NewClient("flooder"));
    std::atomic<bool> stop{false};
    std::thread flood([&] {
      const std::string payload(512, 'f');
      for (int i = 0; i < 20000 && !stop.load(); ++i) {
        if (!flooder->Publish("flood.data", payload).ok()) break;
      }
    });
    int deliveries = 0;
    for (int i = 0; i < 1000 && deliveries < 20; ++i) {
      std::optional<RawReply> got = dealer->Recv(absl::Seconds(1));
      if (got.has_value() && got->header.has_value() &&
          got->header->has_deliver()) {
        ++deliveries;
      }
    }
    EXPECT_GE(deliveries, 20);
    dealer->CloseNow();
    // Another one vanishes without ever reading.
    {
      RawDealer silent(siftd_->endpoint());
      ASSERT_TRUE(silent.Hello().ok());
      ASSERT_TRUE(silent.Call(SubHeader(43, 1, "flood.>")).ok());
      silent.CloseNow();
    }
    stop.store(true);
    flood.join();
    SIFT_ASSERT_OK(flooder->PublishConfirmed("flood.end", "end"));
  }

  void ClientLibraryValidation() {
    SIFT_ASSERT_OK_AND_ASSIGN(auto client, NewClient("validator"));
    for (const char* topic : {"bad..topic", "a.*", "a.>", "", "sp ace"}) {
      absl::Status status = client->Publish(topic, "x");
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
          << "Publish(\"" << topic << "\"): " << status;
      status = client->PublishConfirmed(topic, "x");
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
          << "PublishConfirmed(\"" << topic << "\"): " << status;
    }
    absl::Status status = client->Publish("ok.topic", "x", "bad..reply");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << "invalid reply_to: " << status;

    const std::string big(2000, 'b');
    status = client->Publish("ok.topic", big);
    EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted)
        << "oversize Publish: " << status;
    status = client->PublishConfirmed("ok.topic", big);
    EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted)
        << "oversize PublishConfirmed: " << status;
    SIFT_EXPECT_OK(
        client->PublishConfirmed("ok.topic", std::string(kMaxPayload, 'b')));

    for (const char* pattern : {"a.>.b", "", "a..b", ">.x"}) {
      absl::StatusOr<std::unique_ptr<Subscription>> sub =
          client->Subscribe(pattern);
      EXPECT_EQ(sub.status().code(), absl::StatusCode::kInvalidArgument)
          << "Subscribe(\"" << pattern << "\"): " << sub.status();
    }
    SubscribeOptions grouped;
    grouped.queue_group = "bad group";
    EXPECT_EQ(client->Subscribe("ok.>", grouped).status().code(),
              absl::StatusCode::kInvalidArgument);
    // The client is still fine.
    SIFT_ASSERT_OK_AND_ASSIGN(auto sub, client->Subscribe("ok.>"));
    SIFT_ASSERT_OK(client->PublishConfirmed("ok.topic", "fine"));
    SIFT_ASSERT_OK_AND_ASSIGN(Message msg, sub->Next(kReplyTimeout));
    EXPECT_EQ(msg.payload(), "fine");
  }

  void TooManySubscriptions() {
    auto dealer = Greeted();
    uint64_t rid = 600;
    for (uint64_t sid = 1; sid <= kMaxSubs; ++sid) {
      ++rid;
      absl::StatusOr<wire::Header> ok =
          dealer->Call(SubHeader(rid, sid, absl::StrCat("many.", sid)));
      ASSERT_TRUE(ok.ok() && ok->has_ok())
          << "SUB " << sid << ": "
          << (ok.ok() ? ok->DebugString() : ok.status().ToString());
    }
    ++rid;
    ExpectError(dealer->Call(SubHeader(rid, kMaxSubs + 1, "many.more")),
                wire::TOO_MANY_SUBSCRIPTIONS, rid, "one SUB over the limit");
    // Freeing one makes room for one.
    ++rid;
    absl::StatusOr<wire::Header> ok = dealer->Call(UnsubHeader(rid, 1));
    ASSERT_TRUE(ok.ok() && ok->has_ok());
    ++rid;
    ok = dealer->Call(SubHeader(rid, kMaxSubs + 1, "many.more"));
    ASSERT_TRUE(ok.ok() && ok->has_ok())
        << (ok.ok() ? ok->DebugString() : ok.status().ToString());
    ExpectAlive(*dealer, 908);

    // Through the client library: ResourceExhausted once the limit is hit
    // (the library subscribes its inbox only on the first Request()).
    SIFT_ASSERT_OK_AND_ASSIGN(auto client, NewClient("hoarder"));
    std::vector<std::unique_ptr<Subscription>> subs;
    absl::Status last;
    for (uint64_t i = 0; i < kMaxSubs + 5; ++i) {
      absl::StatusOr<std::unique_ptr<Subscription>> sub =
          client->Subscribe(absl::StrCat("hoard.", i));
      if (!sub.ok()) {
        last = sub.status();
        break;
      }
      subs.push_back(*std::move(sub));
    }
    EXPECT_EQ(last.code(), absl::StatusCode::kResourceExhausted) << last;
    EXPECT_GE(subs.size(), kMaxSubs - 1);
    EXPECT_LE(subs.size(), kMaxSubs);
  }

  // BATCH (many PUBs in frame 1): good batches route, malformed ones are
  // refused, and the count a header claims is not trusted.
  void Batches() {
    auto dealer = Greeted();
    auto watcher = Greeted();
    ASSERT_TRUE(watcher->Call(SubHeader(70, 1, "batch.>")).ok());

    // A good batch of three; the last entry asks for confirmation.
    std::string body;
    protocol::BatchWriter writer(&body);
    writer.AppendPub(0, "batch.a", "", false, "", "one");
    writer.AppendPub(0, "batch.b", "", false, "", "two");
    writer.AppendPub(71, "batch.c", "", true, "", "three");
    // The confirmation answers the entry's request id.
    dealer->Send(BatchHeader(72, 3), body);
    absl::StatusOr<wire::Header> ok = dealer->AwaitReply(71, kReplyTimeout);
    ASSERT_TRUE(ok.ok()) << ok.status();
    EXPECT_TRUE(ok->has_ok()) << ok->DebugString();
    std::vector<std::string> got;
    for (int i = 0; i < 100 && got.size() < 3; ++i) {
      std::optional<RawReply> reply = watcher->Recv(kReplyTimeout);
      if (!reply.has_value()) break;
      if (reply->header.has_value() && reply->header->has_deliver() &&
          reply->frames.size() == 2) {
        got.push_back(reply->frames[1]);
      }
    }
    EXPECT_EQ(got, (std::vector<std::string>{"one", "two", "three"}));

    // Malformed bodies: a length running past the end, an entry that is
    // not a PUB header, no body frame at all.
    dealer->Send(BatchHeader(73, 1), Varint(1000) + "short");
    ExpectError(dealer->AwaitReply(73, kReplyTimeout), wire::BAD_FRAME, 73,
                "BATCH entry length past the end");
    const std::string sub_header = Serialize(SubHeader(0, 9, "x.y"));
    const std::string sub_entry =
        Varint(sub_header.size()) + sub_header + Varint(1) + "p";
    dealer->Send(BatchHeader(74, 1), sub_entry);
    ExpectError(dealer->AwaitReply(74, kReplyTimeout), wire::BAD_FRAME, 74,
                "BATCH entry that is a SUB");
    dealer->Send(BatchHeader(75, 1));
    ExpectError(dealer->AwaitReply(75, kReplyTimeout), wire::BAD_FRAME, 75,
                "BATCH without a body frame");
    ExpectAlive(*dealer, 909);
  }

  // The count in a BATCH header is a claim by the client, not a fact: a
  // single header claiming 2^32-1 entries must neither stall the broker nor
  // add billions to its drop counters.
  void HugeBatchCount() {
    constexpr uint32_t kClaimed = 0xFFFFFFFFu;
    std::string one_entry;
    protocol::BatchWriter(&one_entry)
        .AppendPub(0, "huge.count", "", false, "", "x");
    {
      RawDealer early(siftd_->endpoint());  // no HELLO
      // Generous timeout: a broker that loops over the claimed count takes
      // seconds here (and stalls every other client meanwhile).
      const absl::Time start = absl::Now();
      ExpectError(early.Call(BatchHeader(81, kClaimed), one_entry,
                             absl::Seconds(60)),
                  wire::HELLO_REQUIRED, 81, "huge BATCH before HELLO");
      std::cerr << "huge BATCH before HELLO answered after "
                << absl::Now() - start << "\n";
      early.CloseNow();
    }
    auto dealer = Greeted();
    const absl::Time start = absl::Now();
    ExpectError(dealer->Call(BatchHeader(82, kClaimed),
                             std::string((1 << 20) + 16, 'x'),
                             absl::Seconds(60)),
                wire::PAYLOAD_TOO_LARGE, 82, "huge BATCH, oversized body");
    std::cerr << "huge oversized BATCH answered after " << absl::Now() - start
              << "\n";
    ExpectAlive(*dealer, 910);
    SIFT_ASSERT_OK_AND_ASSIGN(BrokerStats stats, healthy_pub_->Stats());
    for (const wire::DropCount& drop : stats.drops()) {
      EXPECT_LT(drop.count(), 1000000u)
          << "drop counter \"" << drop.reason()
          << "\" inflated by a BATCH header's claimed count";
    }
  }

  static constexpr int kMaxHealthy = 200000;
  std::unique_ptr<SiftdProcess> siftd_;
  std::unique_ptr<Client> healthy_pub_;
  std::unique_ptr<Client> healthy_client_;
  std::unique_ptr<Subscription> healthy_sub_;
  std::shared_ptr<Collector> healthy_received_ = std::make_shared<Collector>();
  std::thread publisher_thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> healthy_sent_{0};
};

TEST_F(BadInputTest, GarbageFrame) { GarbageFrame(); }
TEST_F(BadInputTest, EmptyMessage) { EmptyMessage(); }
TEST_F(BadInputTest, TruncatedHeader) { TruncatedHeader(); }
TEST_F(BadInputTest, WrongFrameCounts) { WrongFrameCounts(); }
TEST_F(BadInputTest, UnknownCommand) { UnknownCommand(); }
TEST_F(BadInputTest, VersionMismatch) { VersionMismatch(); }
TEST_F(BadInputTest, HelloRequired) { HelloRequired(); }
TEST_F(BadInputTest, InvalidTopic) { InvalidTopic(); }
TEST_F(BadInputTest, InvalidPattern) { InvalidPattern(); }
TEST_F(BadInputTest, PayloadTooLarge) { PayloadTooLarge(); }
TEST_F(BadInputTest, RawTcpGarbage) { RawTcpGarbage(); }
TEST_F(BadInputTest, VanishingClient) { VanishingClient(); }
TEST_F(BadInputTest, ClientLibraryValidation) { ClientLibraryValidation(); }
TEST_F(BadInputTest, TooManySubscriptions) { TooManySubscriptions(); }
TEST_F(BadInputTest, Batches) { Batches(); }
TEST_F(BadInputTest, HugeBatchCount) { HugeBatchCount(); }

// All of it against one broker, with the healthy pair running throughout.
TEST_F(BadInputTest, EverythingAtOnce) {
  GarbageFrame();
  EmptyMessage();
  TruncatedHeader();
  WrongFrameCounts();
  UnknownCommand();
  VersionMismatch();
  HelloRequired();
  InvalidTopic();
  InvalidPattern();
  PayloadTooLarge();
  RawTcpGarbage();
  VanishingClient();
  ClientLibraryValidation();
  TooManySubscriptions();
  Batches();
  HugeBatchCount();
  EXPECT_NE(siftd_->ReadLog().find("BAD_FRAME"), std::string::npos);
}

}  // namespace
}  // namespace sift::test
