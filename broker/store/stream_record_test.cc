#include "broker/store/stream_record.h"

#include <string>

#include "broker/store/stream_segment.h"
#include "gtest/gtest.h"

namespace sift::store {
namespace {

TEST(StreamRecordTest, RoundTrip) {
  const std::string headers("h\0k", 3), payload(1000, 'p');
  const RecordView in{42,        1700000000123, "id-1", "orders.eu",
                      "reply.x", headers,       payload};
  std::string buf;
  EncodeRecord(in, &buf);
  ASSERT_EQ(buf.size(), EncodedSize(in));
  RecordView out;
  size_t frame = 0;
  ASSERT_EQ(DecodeRecord(buf, 1 << 20, &out, &frame), DecodeResult::kOk);
  EXPECT_EQ(frame, buf.size());
  EXPECT_EQ(out.seq, 42u);
  EXPECT_EQ(out.unix_ms, 1700000000123);
  EXPECT_EQ(out.msg_id, "id-1");
  EXPECT_EQ(out.topic, "orders.eu");
  EXPECT_EQ(out.reply_to, "reply.x");
  EXPECT_EQ(out.headers, std::string("h\0k", 3));
  EXPECT_EQ(out.payload, std::string(1000, 'p'));
}

TEST(StreamRecordTest, DetectsDamage) {
  const RecordView in{1, 5, "", "t", "", "", "payload"};
  std::string buf;
  EncodeRecord(in, &buf);
  RecordView out;
  size_t frame = 0;
  for (size_t cut = 0; cut < buf.size(); ++cut) {
    EXPECT_EQ(DecodeRecord(buf.substr(0, cut), 1 << 20, &out, &frame),
              DecodeResult::kShort)
        << cut;
  }
  for (size_t i = 0; i < buf.size(); ++i) {
    std::string bad = buf;
    bad[i] ^= 0x01;
    const DecodeResult d = DecodeRecord(bad, 1 << 20, &out, &frame);
    EXPECT_NE(d, DecodeResult::kOk) << "flipped byte " << i;
  }
  EXPECT_EQ(DecodeRecord(std::string(64, '\0'), 1 << 20, &out, &frame),
            DecodeResult::kBadLength);
  EXPECT_EQ(DecodeRecord(buf, 10, &out, &frame), DecodeResult::kBadLength);
}

TEST(StreamRecordTest, SegmentHeaderAndName) {
  uint64_t base = 0;
  EXPECT_TRUE(DecodeSegmentHeader(EncodeSegmentHeader(77), &base));
  EXPECT_EQ(base, 77u);
  EXPECT_FALSE(DecodeSegmentHeader("SIFTSEG", &base));
  EXPECT_EQ(SegmentFileName(12), "00000000000000000012.seg");
  EXPECT_EQ(ParseSegmentFileName("00000000000000000012.seg"), 12u);
  EXPECT_FALSE(ParseSegmentFileName("00000000000000000012.idx"));
  EXPECT_FALSE(ParseSegmentFileName("0000000000000000001x.seg"));
  EXPECT_FALSE(ParseSegmentFileName("99999999999999999999.seg"));  // > u64
}

TEST(StreamRecordTest, CountFramesInTail) {
  std::string buf;
  for (int i = 0; i < 3; ++i) EncodeRecord({1, 1, "", "t", "", "", "x"}, &buf);
  EXPECT_EQ(CountFramesInTail(buf, 1 << 20), 3u);
  EXPECT_EQ(CountFramesInTail(buf.substr(0, buf.size() - 1), 1 << 20), 3u);
  EXPECT_EQ(CountFramesInTail("garbage", 1 << 20), 1u);
  EXPECT_EQ(CountFramesInTail("", 1 << 20), 0u);
}

}  // namespace
}  // namespace sift::store
