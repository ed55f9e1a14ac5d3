// Message headers (docs/protocol.md §8.1) through a real siftd: they reach
// every subscriber in order, batched or not, from the C++ client, raw frames,
// BATCH entries and the `sift` command; bad or oversized headers get their
// own errors and counters while everyone else's traffic goes on.
#include <stdio.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/protocol/batch.h"
#include "broker/protocol/codec.h"
#include "broker/protocol/headers.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"
#include "tests/harness.h"
#include "tests/raw_dealer.h"
#include "tests/siftd_process.h"
#include "tests/test_util.h"

namespace sift::test {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(10);

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs HeadersOf(const Message& m) {
  Pairs out;
  for (const auto& [k, v] : m.headers()) out.emplace_back(k, v);
  return out;
}

Pairs Decode(std::string_view wire_bytes) {
  std::vector<std::pair<std::string_view, std::string_view>> views;
  EXPECT_TRUE(protocol::DecodeHeaders(wire_bytes, &views));
  Pairs out;
  for (const auto& [k, v] : views) out.emplace_back(k, v);
  return out;
}

// A PUB header with `headers` (HeaderFields in order).
wire::Header PubWithHeaders(uint64_t request_id, const std::string& topic,
                            const Pairs& headers, bool confirm = false) {
  wire::Header h = PubHeader(request_id, topic, confirm);
  for (const auto& [k, v] : headers) {
    wire::HeaderField* f = h.mutable_pub()->add_headers();
    f->set_key(k);
    f->set_value(v);
  }
  return h;
}

// Every DELIVER (batched or not) a raw dealer gets within `quiet` of the
// last message, as (topic, headers, payload).
struct Delivery {
  std::string topic;
  Pairs headers;
  std::string payload;
};
std::vector<Delivery> Deliveries(RawDealer& dealer, absl::Duration quiet,
                                 size_t want) {
  std::vector<Delivery> out;
  for (int i = 0; i < 100000 && out.size() < want; ++i) {
    std::optional<RawReply> m = dealer.Recv(quiet);
    if (!m.has_value()) break;
    if (!m->header.has_value()) continue;
    if (m->header->has_deliver() && m->frames.size() == 2) {
      std::string scratch;
      const protocol::DeliverView d =
          protocol::DeliverViewOf(m->header->deliver(), &scratch);
      out.push_back({std::string(d.topic), Decode(d.headers), m->frames[1]});
    }
    if (m->header->has_batch() && m->frames.size() == 2) {
      protocol::BatchReader reader(m->frames[1].data(), m->frames[1].size());
      std::string_view header, payload;
      while (reader.Next(&header, &payload)) {
        protocol::DeliverView d;
        EXPECT_TRUE(
            protocol::DecodeDeliverFast(header.data(), header.size(), &d));
        out.push_back({std::string(d.topic), Decode(d.headers),
                       std::string(payload)});
      }
    }
  }
  return out;
}

const Pairs kSample = {{"region", "eu"},
                       {"priority", "5"},
                       {"region", "us"},  // keys may repeat; order is kept
                       {"empty", ""},
                       {"bin", std::string("\0\xff\n", 3)}};

// The C++ client publishes headers and exposes them on Message, in order,
// for small (batched) and large (unbatched) payloads, for Next() and
// callback subscriptions, and for fire-and-forget and confirmed publishes.
// A message without headers has none.
TEST(HeadersTest, ClientHeadersReachEverySubscriberInOrder) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto sub = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(sub, nullptr);
  auto queue = sub->Subscribe("h.>");
  ASSERT_TRUE(queue.ok()) << queue.status();
  std::vector<Pairs> seen_by_callback;
  absl::Mutex mu;
  SubscribeOptions cb;
  cb.callback = [&](const Message& m) {
    absl::MutexLock lock(&mu);
    seen_by_callback.push_back(HeadersOf(m));
  };
  auto callback = sub->Subscribe("h.>", cb);
  ASSERT_TRUE(callback.ok()) << callback.status();

  const std::string big(100 * 1024, 'b');  // past the 16 KiB batch limit
  ASSERT_TRUE(pub->Publish("h.small", "x", Headers(kSample)).ok());
  ASSERT_TRUE(
      pub->PublishConfirmed("h.big", big, Headers(kSample), kTimeout).ok());
  ASSERT_TRUE(pub->PublishConfirmed("h.none", "y", kTimeout).ok());

  for (const char* topic : {"h.small", "h.big", "h.none"}) {
    auto m = (*queue)->Next(kTimeout);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->topic(), topic);
    if (std::string_view(topic) == "h.none") {
      EXPECT_TRUE(m->headers().empty());
    } else {
      EXPECT_EQ(HeadersOf(*m), kSample) << topic;
      EXPECT_EQ(m->header("region"), "eu");  // the first of a repeated key
      EXPECT_EQ(m->header("missing"), std::nullopt);
    }
  }
  const absl::Time deadline = absl::Now() + kTimeout;
  while (absl::Now() < deadline) {
    absl::MutexLock lock(&mu);
    if (seen_by_callback.size() >= 3) break;
    mu.Unlock();
    absl::SleepFor(absl::Milliseconds(10));
    mu.Lock();
  }
  absl::MutexLock lock(&mu);
  ASSERT_EQ(seen_by_callback.size(), 3u);
  EXPECT_EQ(seen_by_callback[0], kSample);
  EXPECT_EQ(seen_by_callback[1], kSample);
  EXPECT_TRUE(seen_by_callback[2].empty());
}

// Request/reply carries headers both ways.
TEST(HeadersTest, RequestsAndRepliesCarryHeaders) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto requester = Connect(siftd->endpoint());
  auto responder = Connect(siftd->endpoint());
  ASSERT_NE(requester, nullptr);
  ASSERT_NE(responder, nullptr);
  Client* r = responder.get();
  SubscribeOptions options;
  options.callback = [r](const Message& m) {
    Headers echo;
    for (const auto& [k, v] : m.headers()) {
      echo.emplace_back("re-" + std::string(k), std::string(v));
    }
    r->Publish(m.reply_to(), "pong", echo).IgnoreError();
  };
  auto sub = responder->Subscribe("svc.echo", options);
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto reply = requester->Request("svc.echo", "ping",
                                  Headers{{"trace-id", "abc123"}}, kTimeout);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(HeadersOf(*reply), (Pairs{{"re-trace-id", "abc123"}}));
}

// Raw frames: the broker copies a PUB's header entries into each DELIVER,
// for a client that takes batches and one that does not; a PUB whose header
// entries are interleaved with its other fields (legal protobuf, which the
// fast decoder leaves to protobuf) is delivered the same.
TEST(HeadersTest, RawHeadersAreDeliveredVerbatim) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  RawDealer plain(siftd->endpoint());
  ASSERT_TRUE(plain.Hello().ok());
  RawDealer batched(siftd->endpoint());
  {
    wire::Header hello = HelloHeader(1, 1);
    hello.mutable_hello()->set_accepts_batches(true);
    auto w = batched.Call(hello);
    ASSERT_TRUE(w.ok() && w->has_welcome());
    EXPECT_EQ(w->welcome().max_headers(), 64u);
    EXPECT_EQ(w->welcome().max_headers_bytes(), 65536u);
  }
  ASSERT_TRUE(plain.Call(SubHeader(2, 1, "raw.>")).ok());
  ASSERT_TRUE(batched.Call(SubHeader(2, 1, "raw.>")).ok());

  RawDealer pub(siftd->endpoint());
  ASSERT_TRUE(pub.Hello().ok());
  ASSERT_TRUE(pub.Call(PubWithHeaders(5, "raw.a", kSample, true), "p1").ok());
  // Interleaved: a header entry, the topic, another entry, confirm.
  std::string pub_body;
  protocol::AppendHeader("k1", "v1", &pub_body);
  pub_body += {static_cast<char>(0x0a), 5};  // Pub.topic, 5 bytes
  pub_body += "raw.b";
  protocol::AppendHeader("k2", "v2", &pub_body);
  pub_body += {static_cast<char>(0x18), 1};  // Pub.confirm = true
  std::string interleaved = {static_cast<char>(0x08), 6,  // request_id 6
                             static_cast<char>(0x22),     // Header.pub
                             static_cast<char>(pub_body.size())};
  interleaved += pub_body;
  pub.SendFrames({interleaved, "p2"});
  auto ok = pub.AwaitReply(6, kTimeout);
  ASSERT_TRUE(ok.ok() && ok->has_ok()) << (ok.ok() ? ok->DebugString() : "");

  for (RawDealer* d : {&plain, &batched}) {
    std::vector<Delivery> got = Deliveries(*d, absl::Seconds(2), 2);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].topic, "raw.a");
    EXPECT_EQ(got[0].headers, kSample);
    EXPECT_EQ(got[0].payload, "p1");
    EXPECT_EQ(got[1].topic, "raw.b");
    EXPECT_EQ(got[1].headers, (Pairs{{"k1", "v1"}, {"k2", "v2"}}));
    EXPECT_EQ(got[1].payload, "p2");
  }
}

// Bad headers: each kind gets its own ERROR (with the PUB's request_id) and
// drop reason, the message is not delivered, and a second publisher's
// traffic, interleaved, is delivered whole.
TEST(HeadersTest, BadHeadersAreRefusedAndOthersContinue) {
  auto siftd =
      StartSiftd({"--max_headers=4", "--max_headers_bytes=100"});
  ASSERT_NE(siftd, nullptr);
  RawDealer sub(siftd->endpoint());
  ASSERT_TRUE(sub.Hello().ok());
  ASSERT_TRUE(sub.Call(SubHeader(2, 1, "t.>")).ok());
  RawDealer good(siftd->endpoint());
  ASSERT_TRUE(good.Hello().ok());
  RawDealer bad(siftd->endpoint());
  ASSERT_TRUE(bad.Hello().ok());

  struct Case {
    std::string frame0;
    wire::ErrorCode code;
    const char* says;
  };
  std::vector<Case> cases;
  cases.push_back({Serialize(PubWithHeaders(11, "t.bad", {{"has space", "v"}})),
                   wire::INVALID_HEADER, "not a token"});
  cases.push_back({Serialize(PubWithHeaders(12, "t.bad", {{"", "v"}})),
                   wire::INVALID_HEADER, "header 1"});
  cases.push_back({Serialize(PubWithHeaders(
                       13, "t.bad", {{std::string(65, 'k'), "v"}})),
                   wire::INVALID_HEADER, "not a token"});
  {
    // An entry with a field HeaderField does not have.
    std::string body;
    body.push_back(static_cast<char>(0x0a));  // Pub.topic
    body.push_back(5);
    body += "t.bad";
    std::string entry = {static_cast<char>(0x0a), 1, 'k',
                         static_cast<char>(0x18), 7};  // key, field 3 = 7
    body.push_back(static_cast<char>(0x22));           // Pub.headers
    body.push_back(static_cast<char>(entry.size()));
    body += entry;
    std::string frame = {static_cast<char>(0x08), 14,  // request_id 14
                         static_cast<char>(0x22),
                         static_cast<char>(body.size())};
    frame += body;
    cases.push_back({frame, wire::INVALID_HEADER, "malformed"});
  }
  cases.push_back(
      {Serialize(PubWithHeaders(
           15, "t.bad", {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"},
                         {"e", "5"}})),
       wire::HEADERS_TOO_LARGE, "5 headers; at most 4"});
  cases.push_back({Serialize(PubWithHeaders(16, "t.bad",
                                            {{"big", std::string(98, 'v')}})),
                   wire::HEADERS_TOO_LARGE, "101 key and value bytes"});

  int good_sent = 0;
  for (const Case& c : cases) {
    good.Send(PubWithHeaders(0, "t.good", {{"n", absl::StrCat(good_sent)}}),
              "ok");
    ++good_sent;
    bad.SendFrames({c.frame0, "refused"});
    std::optional<RawReply> reply = bad.Recv(kTimeout);
    ASSERT_TRUE(reply.has_value() && reply->header.has_value());
    ASSERT_TRUE(reply->header->has_error()) << reply->header->DebugString();
    EXPECT_EQ(reply->header->error().code(), c.code)
        << reply->header->DebugString();
    EXPECT_TRUE(absl::StrContains(reply->header->error().message(), c.says))
        << reply->header->error().message();
    EXPECT_NE(reply->header->request_id(), 0u);
  }
  // At the limits exactly: accepted.
  // 6 + 3 + 91 = 100 key and value bytes in 4 headers.
  auto edge = bad.Call(PubWithHeaders(20, "t.edge",
                                      {{"a", "1"}, {"b", "2"}, {"c", "3"},
                                       {"big", std::string(91, 'v')}},
                                      true),
                       "edge");
  ASSERT_TRUE(edge.ok() && edge->has_ok())
      << (edge.ok() ? edge->DebugString() : edge.status().ToString());

  std::vector<Delivery> got =
      Deliveries(sub, absl::Seconds(2), static_cast<size_t>(good_sent) + 1);
  ASSERT_EQ(got.size(), static_cast<size_t>(good_sent) + 1);
  // The good publisher's messages in its order; the edge message came on
  // another connection, so it may arrive anywhere among them.
  std::vector<Delivery> goods, edges;
  for (const Delivery& d : got) (d.topic == "t.good" ? goods : edges).push_back(d);
  ASSERT_EQ(goods.size(), static_cast<size_t>(good_sent));
  for (int i = 0; i < good_sent; ++i) {
    EXPECT_EQ(goods[i].headers, (Pairs{{"n", absl::StrCat(i)}}));
  }
  ASSERT_EQ(edges.size(), 1u);
  EXPECT_EQ(edges[0].topic, "t.edge");
  EXPECT_EQ(edges[0].headers.size(), 4u);

  auto stats = sub.Call(StatsHeader(99));
  ASSERT_TRUE(stats.ok() && stats->has_stats_reply());
  EXPECT_EQ(Drops(stats->stats_reply(), "invalid_header"), 4u);
  EXPECT_EQ(Drops(stats->stats_reply(), "headers_too_large"), 2u);
}

// BATCH entries carry headers; a bad entry gets its own ERROR while the
// entries around it are routed.
TEST(HeadersTest, BatchEntriesCarryHeaders) {
  auto siftd = StartSiftd({"--max_headers=2"});
  ASSERT_NE(siftd, nullptr);
  RawDealer sub(siftd->endpoint());
  ASSERT_TRUE(sub.Hello().ok());
  ASSERT_TRUE(sub.Call(SubHeader(2, 1, "b.>")).ok());
  RawDealer pub(siftd->endpoint());
  ASSERT_TRUE(pub.Hello().ok());

  std::string body;
  protocol::BatchWriter w(&body);
  w.AppendPub(0, "b.one", "", false,
              protocol::EncodeHeaders(Pairs{{"x", "1"}}), "one");
  w.AppendPub(31, "b.bad", "", false,
              protocol::EncodeHeaders(Pairs{{"x", "1"}, {"y", "2"}, {"z", "3"}}),
              "bad");
  w.AppendPub(0, "b.two", "", false, "", "two");
  w.AppendPub(32, "b.three", "", true,
              protocol::EncodeHeaders(Pairs{{"y", "2"}, {"x", "1"}}), "three");
  pub.Send(BatchHeader(30, 4), body);
  auto err = pub.AwaitReply(31, kTimeout);
  ASSERT_TRUE(err.ok() && err->has_error());
  EXPECT_EQ(err->error().code(), wire::HEADERS_TOO_LARGE);
  auto ok = pub.AwaitReply(32, kTimeout);
  ASSERT_TRUE(ok.ok() && ok->has_ok());

  std::vector<Delivery> got = Deliveries(sub, absl::Seconds(2), 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].topic, "b.one");
  EXPECT_EQ(got[0].headers, (Pairs{{"x", "1"}}));
  EXPECT_EQ(got[1].topic, "b.two");
  EXPECT_TRUE(got[1].headers.empty());
  EXPECT_EQ(got[2].topic, "b.three");
  EXPECT_EQ(got[2].headers, (Pairs{{"y", "2"}, {"x", "1"}}));
}

// Headers up to the default limits fit in frame 0: 64 headers holding
// 64 KiB in all are routed, not refused as an oversized frame.
TEST(HeadersTest, HeadersAtTheDefaultLimitsFitInFrameZero) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto sub = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(sub, nullptr);
  auto s = sub->Subscribe("full");
  ASSERT_TRUE(s.ok());
  Headers many;
  for (int i = 0; i < 64; ++i) {
    const std::string key = absl::StrCat("key-", i);  // 5 or 6 bytes
    many.emplace_back(key, std::string(1024 - key.size(), 'v'));
  }
  ASSERT_TRUE(pub->PublishConfirmed("full", "p", many, kTimeout).ok());
  auto m = (*s)->Next(kTimeout);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->headers().size(), 64u);
  EXPECT_EQ(m->headers()[63].first, "key-63");
}

// The C++ client checks headers against the WELCOME limits before sending,
// with the broker's codes, and refuses headers for a broker that takes none.
TEST(HeadersTest, TheClientChecksHeadersLocally) {
  auto siftd = StartSiftd({"--max_headers=2", "--max_headers_bytes=10"});
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  absl::Status s = client->Publish("t", "p", Headers{{"bad key", "v"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(protocol::WireCodeOf(s), wire::INVALID_HEADER);
  s = client->Publish("t", "p", Headers{{"a", "1"}, {"b", "2"}, {"c", "3"}});
  EXPECT_EQ(protocol::WireCodeOf(s), wire::HEADERS_TOO_LARGE) << s;
  s = client->Publish("t", "p", Headers{{"a", "0123456789"}});
  EXPECT_EQ(protocol::WireCodeOf(s), wire::HEADERS_TOO_LARGE) << s;
  EXPECT_TRUE(client->PublishConfirmed("t", "p", Headers{{"a", "12"}}, kTimeout)
                  .ok());

  auto none = StartSiftd({"--max_headers=0"});
  ASSERT_NE(none, nullptr);
  auto plain = Connect(none->endpoint());
  ASSERT_NE(plain, nullptr);
  s = plain->Publish("t", "p", Headers{{"a", "1"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_TRUE(plain->PublishConfirmed("t", "p", kTimeout).ok());
}

TEST(HeadersTest, TheCliPublishesAndPrintsHeaders) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  const std::string sift = SiftCliPath();
  const std::string server = absl::StrCat("--server=", siftd->endpoint());
  const std::string out = absl::StrCat(TestTmpDir(), "/cli_sub.txt");
  const pid_t sub = Spawn({sift, server, "sub", "cli.>", "--headers",
                           "--count", "1", "--timeout", "20s"},
                          out);
  ASSERT_GT(sub, 0);
  // Publish until the subscriber (which may still be connecting) has one.
  for (int i = 0; i < 100 && ReadFile(out).empty(); ++i) {
    const pid_t pub = Spawn({sift, server, "pub", "cli.x", "hello", "--header",
                             "region=eu", "--header", "note=a b"},
                            "/dev/null");
    ASSERT_GT(pub, 0);
    ASSERT_EQ(Reap(pub, kTimeout), 0);
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(Reap(sub, kTimeout), 0);
  EXPECT_EQ(ReadFile(out), "[cli.x] hello\n  region: eu\n  note: a b\n");

  // A bad header: a usage error (no '='), and the client's check of a key
  // that is not a token (the broker's rule).
  const std::string err = absl::StrCat(TestTmpDir(), "/cli_err.txt");
  EXPECT_EQ(Reap(Spawn({sift, server, "pub", "cli.x", "hi", "--header",
                        "nokey"},
                       err),
                 kTimeout),
            2);
  EXPECT_TRUE(absl::StrContains(ReadFile(err), "use KEY=VALUE")) << ReadFile(err);
  EXPECT_EQ(Reap(Spawn({sift, server, "pub", "cli.x", "hi", "--header",
                        "a b=c"},
                       err),
                 kTimeout),
            1);
  EXPECT_TRUE(absl::StrContains(ReadFile(err), "not a token")) << ReadFile(err);
}

}  // namespace
}  // namespace sift::test
