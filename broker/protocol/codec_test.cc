#include "broker/protocol/codec.h"

#include <string>

#include "gtest/gtest.h"

namespace sift::protocol {
namespace {

TEST(CodecTest, DeliverFastPathMatchesProtobuf) {
  struct Case { uint64_t sid; std::string topic, reply_to; };
  const Case cases[] = {{1, "a", ""},
                        {300, "orders.eu.created", "_INBOX.c1.7"},
                        {0, "x", ""},
                        {~0ull, std::string(200, 't'), std::string(130, 'r')}};
  for (const Case& c : cases) {
    wire::Header h;
    h.mutable_deliver()->set_sid(c.sid);
    h.mutable_deliver()->set_topic(c.topic);
    h.mutable_deliver()->set_reply_to(c.reply_to);
    std::string fast(DeliverSize(c.sid, c.topic, c.reply_to), '\0');
    ASSERT_EQ(EncodeDeliver(c.sid, c.topic, c.reply_to, {}, fast.data()),
              fast.size());
    EXPECT_EQ(fast, h.SerializeAsString()) << c.topic;
  }
}

TEST(CodecTest, PubFastPathMatchesProtobuf) {
  struct Case { uint64_t id; std::string topic, reply_to; bool confirm; };
  const Case cases[] = {{0, "a.b", "", false},
                        {77, "orders.eu", "_INBOX.c3.1", true},
                        {1ull << 40, std::string(300, 'p'), "", true}};
  for (const Case& c : cases) {
    wire::Header h;
    h.set_request_id(c.id);
    h.mutable_pub()->set_topic(c.topic);
    h.mutable_pub()->set_reply_to(c.reply_to);
    h.mutable_pub()->set_confirm(c.confirm);
    std::string fast(PubSize(c.id, c.topic, c.reply_to, c.confirm), '\0');
    ASSERT_EQ(EncodePub(c.id, c.topic, c.reply_to, c.confirm, {}, fast.data()),
              fast.size());
    EXPECT_EQ(fast, h.SerializeAsString());
  }
}

TEST(CodecTest, DecodeRoundTripsEveryCommand) {
  HeaderDecoder decoder;
  wire::Header h;
  h.set_request_id(9);
  h.mutable_sub()->set_sid(4);
  h.mutable_sub()->set_pattern("a.*.>");
  h.mutable_sub()->set_queue_group("workers");
  std::string bytes = EncodeHeader(h);
  auto decoded = decoder.Decode(bytes.data(), bytes.size());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ((*decoded)->request_id(), 9u);
  EXPECT_EQ((*decoded)->sub().pattern(), "a.*.>");
  EXPECT_EQ((*decoded)->sub().queue_group(), "workers");
  EXPECT_STREQ(CommandName(**decoded), "SUB");

  wire::Header hello;
  hello.mutable_hello()->set_protocol_version(wire::PROTOCOL_VERSION_CURRENT);
  hello.mutable_hello()->set_client_name("me");
  bytes = EncodeHeader(hello);
  decoded = decoder.Decode(bytes.data(), bytes.size());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ((*decoded)->hello().protocol_version(), 1u);
  EXPECT_EQ((*decoded)->hello().client_name(), "me");

  std::string big(20000, 'z');  // larger than the inline arena block
  wire::Header pub;
  pub.mutable_pub()->set_topic(big);
  bytes = EncodeHeader(pub);
  decoded = decoder.Decode(bytes.data(), bytes.size());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ((*decoded)->pub().topic(), big);
}

TEST(CodecTest, GarbageIsBadFrame) {
  HeaderDecoder decoder;
  const std::string garbage = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01";
  auto decoded = decoder.Decode(garbage.data(), garbage.size());
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(WireCodeOf(decoded.status()), wire::BAD_FRAME);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  // A truncated valid header is also rejected.
  wire::Header h;
  h.mutable_pub()->set_topic("orders.eu.created");
  std::string bytes = EncodeHeader(h);
  decoded = decoder.Decode(bytes.data(), bytes.size() - 3);
  EXPECT_FALSE(decoded.ok());
}

TEST(CodecTest, UnknownCommandParsesWithNoCommandSet) {
  // Field 99, varint: what a newer client's command would look like.
  const std::string future = "\x98\x06\x01";
  HeaderDecoder decoder;
  auto decoded = decoder.Decode(future.data(), future.size());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ((*decoded)->command_case(), wire::Header::COMMAND_NOT_SET);
  EXPECT_STREQ(CommandName(**decoded), "UNKNOWN");
}

TEST(CodecTest, WireErrorCarriesCode) {
  absl::Status s = WireError(wire::INVALID_PATTERN, "bad");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WireCodeOf(s), wire::INVALID_PATTERN);
  EXPECT_EQ(s.message(), "bad");
  EXPECT_EQ(WireCodeOf(absl::NotFoundError("x")), wire::UNKNOWN_SID);
  EXPECT_EQ(WireCodeOf(absl::UnknownError("x")), wire::INTERNAL);
}

}  // namespace
}  // namespace sift::protocol
