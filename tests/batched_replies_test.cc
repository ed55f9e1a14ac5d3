// Replies inside BATCH frames (docs/protocol.md §9), against a real siftd
// over a raw DEALER: a client whose HELLO sets accepts_batched_replies gets
// the OKs and ERRORs of one pass in one BATCH, in order with the deliveries
// around them; a client that did not ask gets each reply as its own message.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/protocol/batch.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"
#include "tests/harness.h"
#include "tests/raw_dealer.h"
#include "tests/siftd_process.h"

namespace sift::test {
namespace {

// A dealer that has said HELLO with accepts_batches and, as given,
// accepts_batched_replies.
std::unique_ptr<RawDealer> Session(const std::string& endpoint,
                                   bool batched_replies) {
  auto dealer = std::make_unique<RawDealer>(endpoint);
  wire::Header hello = HelloHeader(1, 1);
  hello.mutable_hello()->set_accepts_batches(true);
  hello.mutable_hello()->set_accepts_batched_replies(batched_replies);
  auto welcome = dealer->Call(hello);
  EXPECT_TRUE(welcome.ok() && welcome->has_welcome())
      << (welcome.ok() ? welcome->DebugString() : welcome.status().ToString());
  return dealer;
}

// What a client read: each header in arrival order (a BATCH's entries in
// place of the BATCH) and how many ZeroMQ messages carried them.
struct Received {
  std::vector<wire::Header> headers;
  int messages = 0;
  int batches = 0;
};

// Reads until `want` headers came (or 10 s passed).
Received ReadHeaders(RawDealer& dealer, size_t want) {
  Received r;
  while (r.headers.size() < want) {
    std::optional<RawReply> m = dealer.Recv(absl::Seconds(10));
    if (!m.has_value()) break;
    ++r.messages;
    if (!m->header.has_value()) continue;
    if (!m->header->has_batch()) {
      r.headers.push_back(*m->header);
      continue;
    }
    ++r.batches;
    EXPECT_EQ(m->frames.size(), 2u);
    if (m->frames.size() != 2) continue;
    protocol::BatchReader reader(m->frames[1].data(), m->frames[1].size());
    std::string_view header, payload;
    while (reader.Next(&header, &payload)) {
      wire::Header h;
      EXPECT_TRUE(h.ParseFromArray(header.data(), header.size()));
      r.headers.push_back(h);
    }
    EXPECT_FALSE(reader.error());
  }
  return r;
}

// 20 confirmed PUBs in one BATCH, the 11th on a reserved topic (FORBIDDEN).
std::string TwentyConfirmedPubs() {
  std::string body;
  protocol::BatchWriter writer(&body);
  for (uint64_t i = 0; i < 20; ++i) {
    writer.AppendPub(100 + i, i == 10 ? "$sift.dead.x" : "batch.t", "", true,
                     "", absl::StrCat("m", i));
  }
  return body;
}

TEST(BatchedRepliesTest, RepliesOfOnePassComeInOneBatchInOrder) {
  auto siftd = StartSiftd({});
  ASSERT_NE(siftd, nullptr);
  auto dealer = Session(siftd->endpoint(), true);
  dealer->Send(BatchHeader(0, 20), TwentyConfirmedPubs());
  const Received r = ReadHeaders(*dealer, 20);
  ASSERT_EQ(r.headers.size(), 20u);
  for (uint64_t i = 0; i < 20; ++i) {
    const wire::Header& h = r.headers[i];
    EXPECT_EQ(h.request_id(), 100 + i) << h.DebugString();
    if (i == 10) {
      ASSERT_TRUE(h.has_error()) << h.DebugString();
      EXPECT_EQ(h.error().code(), wire::FORBIDDEN);
    } else {
      EXPECT_TRUE(h.has_ok()) << h.DebugString();
    }
  }
  // One PUB BATCH is handled in one pass: its replies leave together.
  EXPECT_EQ(r.messages, 1);
  EXPECT_EQ(r.batches, 1);
}

TEST(BatchedRepliesTest, WithoutTheFlagEachReplyIsItsOwnMessage) {
  auto siftd = StartSiftd({});
  ASSERT_NE(siftd, nullptr);
  auto dealer = Session(siftd->endpoint(), false);
  dealer->Send(BatchHeader(0, 20), TwentyConfirmedPubs());
  const Received r = ReadHeaders(*dealer, 20);
  ASSERT_EQ(r.headers.size(), 20u);
  EXPECT_EQ(r.messages, 20);
  EXPECT_EQ(r.batches, 0);
  for (uint64_t i = 0; i < 20; ++i) {
    EXPECT_EQ(r.headers[i].request_id(), 100 + i);
    EXPECT_EQ(r.headers[i].has_error(), i == 10);
  }
}

TEST(BatchedRepliesTest, RepliesKeepTheirPlaceAmongDeliveries) {
  auto siftd = StartSiftd({});
  ASSERT_NE(siftd, nullptr);
  auto dealer = Session(siftd->endpoint(), true);
  dealer->Send(SubHeader(2, 7, "batch.>"));
  const Received subscribed = ReadHeaders(*dealer, 1);  // its OK, batched
  ASSERT_EQ(subscribed.headers.size(), 1u);
  EXPECT_TRUE(subscribed.headers[0].has_ok());
  EXPECT_EQ(subscribed.batches, 1);
  std::string body;
  protocol::BatchWriter writer(&body);
  for (uint64_t i = 0; i < 5; ++i) {
    writer.AppendPub(200 + i, "batch.own", "", true, "",
                     absl::StrCat("p", i));
  }
  dealer->Send(BatchHeader(0, 5), body);
  // Each PUB is routed (its DELIVER to this same client), then confirmed.
  const Received r = ReadHeaders(*dealer, 10);
  ASSERT_EQ(r.headers.size(), 10u);
  for (uint64_t i = 0; i < 5; ++i) {
    EXPECT_TRUE(r.headers[2 * i].has_deliver()) << r.headers[2 * i].DebugString();
    EXPECT_EQ(r.headers[2 * i].deliver().sid(), 7u);
    EXPECT_TRUE(r.headers[2 * i + 1].has_ok());
    EXPECT_EQ(r.headers[2 * i + 1].request_id(), 200 + i);
  }
  // Other replies (PONG here) are never batched, and come after.
  wire::Header ping = PingHeader(300);
  auto pong = dealer->Call(ping);
  ASSERT_TRUE(pong.ok() && pong->has_pong());
}

}  // namespace
}  // namespace sift::test
