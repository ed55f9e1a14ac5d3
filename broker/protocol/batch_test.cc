#include "broker/protocol/batch.h"

#include <string>
#include <vector>

#include "broker/protocol/codec.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"

namespace sift::protocol {
namespace {

TEST(BatchTest, WriterAndReaderRoundTrip) {
  std::string body;
  BatchWriter writer(&body);
  writer.AppendPub(0, "a.b", "", false, "", "one");
  writer.AppendPub(42, "orders.eu", "_INBOX.c1.9", true, "",
                   std::string(300, 'x'));
  writer.AppendDeliver(7, "t", "", "", "");

  BatchReader reader(body.data(), body.size());
  std::string_view header, payload;
  PubView pub;
  ASSERT_TRUE(reader.Next(&header, &payload));
  ASSERT_TRUE(DecodePubFast(header.data(), header.size(), &pub));
  EXPECT_EQ(pub.topic, "a.b");
  EXPECT_EQ(pub.request_id, 0u);
  EXPECT_FALSE(pub.confirm);
  EXPECT_EQ(payload, "one");

  ASSERT_TRUE(reader.Next(&header, &payload));
  ASSERT_TRUE(DecodePubFast(header.data(), header.size(), &pub));
  EXPECT_EQ(pub.request_id, 42u);
  EXPECT_EQ(pub.topic, "orders.eu");
  EXPECT_EQ(pub.reply_to, "_INBOX.c1.9");
  EXPECT_TRUE(pub.confirm);
  EXPECT_EQ(payload, std::string(300, 'x'));

  ASSERT_TRUE(reader.Next(&header, &payload));
  DeliverView deliver;
  EXPECT_FALSE(DecodePubFast(header.data(), header.size(), &pub));
  ASSERT_TRUE(DecodeDeliverFast(header.data(), header.size(), &deliver));
  EXPECT_EQ(deliver.sid, 7u);
  EXPECT_EQ(deliver.topic, "t");
  EXPECT_EQ(payload, "");

  EXPECT_FALSE(reader.Next(&header, &payload));
  EXPECT_FALSE(reader.error());
}

TEST(BatchTest, TruncatedBodyIsAnError) {
  std::string body;
  BatchWriter(&body).AppendPub(0, "a", "", false, "", "payload");
  for (size_t cut = 1; cut < body.size(); ++cut) {
    BatchReader reader(body.data(), cut);
    std::string_view header, payload;
    EXPECT_FALSE(reader.Next(&header, &payload)) << cut;
    EXPECT_TRUE(reader.error()) << cut;
  }
}

TEST(BatchTest, FastDecodersAgreeWithProtobuf) {
  wire::Header h;
  h.set_request_id(5);
  h.mutable_pub()->set_topic("x.y");
  h.mutable_pub()->set_confirm(true);
  std::string bytes = h.SerializeAsString();
  PubView pub;
  ASSERT_TRUE(DecodePubFast(bytes.data(), bytes.size(), &pub));
  EXPECT_EQ(pub.request_id, 5u);
  EXPECT_EQ(pub.topic, "x.y");
  EXPECT_TRUE(pub.confirm);

  // Anything else falls back to the full decoder.
  wire::Header sub;
  sub.mutable_sub()->set_pattern("a");
  bytes = sub.SerializeAsString();
  EXPECT_FALSE(DecodePubFast(bytes.data(), bytes.size(), &pub));
  const std::string garbage = "\xff\xff\xff";
  EXPECT_FALSE(DecodePubFast(garbage.data(), garbage.size(), &pub));
  EXPECT_FALSE(DecodePubFast("", 0, &pub));
  // A PUB with an unknown field inside is left to the full decoder.
  const std::string future = std::string("\x22\x05\x0a\x01\x61\x40\x01", 7);
  EXPECT_FALSE(DecodePubFast(future.data(), future.size(), &pub));
}

// Frames found by tools/fuzz.sh (docs/fuzzing.md) on which the fast decoders
// read something protobuf does not: a command field that appears twice
// (protobuf merges, or refuses the first) and tags or lengths longer than 5
// bytes (protobuf refuses). The fast path must refuse them, leaving the
// judgement to the full decoder.
TEST(BatchTest, FastDecodersRefuseWhatProtobufReadsDifferently) {
  const std::vector<std::string> frames = {
      std::string("\x08\x02\x22\x02\x18\x01\x22\x08\x0a\x06" "demo.x", 16),
      std::string("\x22\x02\xfd\xff\x22\x08\x0a\x06" "demo.x", 14),
      std::string("\x22\x80\x80\x80\x80\x80\x00", 7),
      std::string("\xa2\x80\x80\x80\x80\x01\x00", 7),
  };
  for (const std::string& f : frames) {
    PubView view;
    EXPECT_FALSE(DecodePubFast(f.data(), f.size(), &view))
        << "frame of " << f.size() << " bytes";
  }
  const std::string deliver("\x3a\x02\x08\x01\x3a\x08\x12\x06" "demo.x", 14);
  DeliverView d;
  EXPECT_FALSE(DecodeDeliverFast(deliver.data(), deliver.size(), &d));
}

// AppendOk writes what protobuf writes for the same reply, and
// DecodeOkFast reads it back; anything but a plain OK is left to the full
// decoder.
TEST(BatchTest, OkEntriesMatchProtobuf) {
  const std::vector<OkView> oks = {
      {},
      {7, 0, false, 0},
      {300, 129, false, 0},
      {1ull << 40, 5, true, 0},
      {9, 0, false, 1000},
      {UINT64_MAX, UINT64_MAX, true, UINT32_MAX},
  };
  for (const OkView& ok : oks) {
    wire::Header h;
    if (ok.request_id != 0) h.set_request_id(ok.request_id);
    wire::Ok* o = h.mutable_ok();
    if (ok.stream_seq != 0) o->set_stream_seq(ok.stream_seq);
    if (ok.duplicate) o->set_duplicate(true);
    if (ok.delivered != 0) o->set_delivered(ok.delivered);

    std::string body, expected;
    BatchWriter(&body).AppendOk(ok);
    BatchWriter(&expected).AppendReply(h);
    EXPECT_EQ(body, expected) << "request " << ok.request_id;

    BatchReader reader(body.data(), body.size());
    std::string_view header, payload;
    ASSERT_TRUE(reader.Next(&header, &payload));
    EXPECT_TRUE(payload.empty());
    OkView back;
    ASSERT_TRUE(DecodeOkFast(header.data(), header.size(), &back));
    EXPECT_EQ(back.request_id, ok.request_id);
    EXPECT_EQ(back.stream_seq, ok.stream_seq);
    EXPECT_EQ(back.duplicate, ok.duplicate);
    EXPECT_EQ(back.delivered, ok.delivered);
  }

  OkView view;
  wire::Header error;
  error.set_request_id(3);
  error.mutable_error()->set_code(wire::STORE_FULL);
  std::string bytes = error.SerializeAsString();
  EXPECT_FALSE(DecodeOkFast(bytes.data(), bytes.size(), &view));
  wire::Header deliver;
  deliver.mutable_deliver()->set_sid(1);
  bytes = deliver.SerializeAsString();
  EXPECT_FALSE(DecodeOkFast(bytes.data(), bytes.size(), &view));
  // An Ok with a field this decoder does not know (9), a delivered count
  // beyond 32 bits (protobuf would truncate it), the Ok field twice.
  const std::vector<std::string> refused = {
      std::string("RH", 6),
      std::string("R", 8),
      std::string("RR", 8),
  };
  for (const std::string& f : refused) {
    EXPECT_FALSE(DecodeOkFast(f.data(), f.size(), &view))
        << "frame of " << f.size() << " bytes";
  }
}

// EncodeAck writes what protobuf writes; DecodeAckFast and NextPackedId
// read the ids back, stream delivery ids (bit 62) included. Other shapes of
// the same ACK are left to protobuf.
TEST(BatchTest, AckHeadersMatchProtobuf) {
  const std::vector<std::vector<uint64_t>> lists = {
      {1},
      {5, 6, 7, 300, 1ull << 35},
      {(1ull << 62) | 9, (1ull << 63) - 1},
  };
  for (const std::vector<uint64_t>& ids : lists) {
    wire::Header h;
    for (uint64_t id : ids) h.mutable_ack()->add_delivery_ids(id);
    std::string fast;
    EncodeAck(ids.data(), ids.size(), &fast);
    EXPECT_EQ(fast, h.SerializeAsString()) << ids.size() << " ids";

    AckView view;
    ASSERT_TRUE(DecodeAckFast(fast.data(), fast.size(), &view));
    EXPECT_EQ(view.request_id, 0u);
    std::vector<uint64_t> back;
    uint64_t id;
    std::string_view packed = view.packed_ids;
    while (NextPackedId(&packed, &id)) back.push_back(id);
    EXPECT_EQ(back, ids);
    std::vector<uint64_t> walked = {42};  // replaced, not appended to
    ASSERT_TRUE(DecodeAckFast(fast.data(), fast.size(), &view, &walked));
    EXPECT_EQ(walked, ids);
  }

  AckView view;
  // With a request_id (AckSync): read, and the request_id kept.
  wire::Header sync;
  sync.set_request_id(77);
  sync.mutable_ack()->add_delivery_ids(3);
  std::string bytes = sync.SerializeAsString();
  ASSERT_TRUE(DecodeAckFast(bytes.data(), bytes.size(), &view));
  EXPECT_EQ(view.request_id, 77u);
  // An id of 2^63 or more (10 bytes), ids not packed, the ids field twice,
  // a NACK, a truncated varint: protobuf's to read.
  wire::Header big;
  big.mutable_ack()->add_delivery_ids(1ull << 63);
  const std::vector<std::string> refused = {
      big.SerializeAsString(),
      std::string("\x8a\x01\x04\x08\x01\x08\x02", 7),
      std::string("\x8a\x01\x06\x0a\x01\x01\x0a\x01\x02", 9),
      std::string("\x92\x01\x02\x08\x01", 5),
      std::string("\x8a\x01\x03\x0a\x01\x80", 6),
  };
  for (const std::string& f : refused) {
    EXPECT_FALSE(DecodeAckFast(f.data(), f.size(), &view))
        << "frame of " << f.size() << " bytes";
  }
}

TEST(BatchTest, BatchHeaderMatchesProtobuf) {
  for (uint32_t count : {0u, 1u, 127u, 128u, 70000u}) {
    wire::Header h;
    h.mutable_batch()->set_count(count);
    std::string fast(BatchHeaderSize(count), '\0');
    ASSERT_EQ(EncodeBatchHeader(count, fast.data()), fast.size());
    EXPECT_EQ(fast, h.SerializeAsString()) << count;
  }
}

TEST(BatchTest, SkipRestCountsTheRemainingEntries) {
  std::string body;
  BatchWriter writer(&body);
  for (int i = 0; i < 5; ++i) writer.AppendDeliver(i, "t", "", "", "p");
  BatchReader reader(body.data(), body.size());
  std::string_view header, payload;
  ASSERT_TRUE(reader.Next(&header, &payload));
  EXPECT_EQ(reader.SkipRest(), 4u);
  EXPECT_EQ(reader.SkipRest(), 0u);
  EXPECT_FALSE(reader.error());
}

TEST(BatchTest, ViewsOfDecodedHeaders) {
  wire::Header h;
  h.set_request_id(7);
  h.mutable_pub()->set_topic("a.b");
  h.mutable_pub()->set_reply_to("r");
  h.mutable_pub()->set_confirm(true);
  std::string scratch;
  const PubView pub = PubViewOf(h, &scratch);
  EXPECT_EQ(pub.request_id, 7u);
  EXPECT_EQ(pub.topic, "a.b");
  EXPECT_EQ(pub.reply_to, "r");
  EXPECT_TRUE(pub.confirm);

  wire::Deliver d;
  d.set_sid(9);
  d.set_topic("x");
  std::string deliver_scratch;
  const DeliverView deliver = DeliverViewOf(d, &deliver_scratch);
  EXPECT_EQ(deliver.sid, 9u);
  EXPECT_EQ(deliver.topic, "x");
  EXPECT_EQ(deliver.reply_to, "");
}

}  // namespace
}  // namespace sift::protocol
