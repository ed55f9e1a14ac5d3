#include "broker/protocol/headers.h"

#include <string>
#include <utility>
#include <vector>

#include "broker/protocol/batch.h"
#include "broker/protocol/codec.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"

namespace sift::protocol {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;
using Views = std::vector<std::pair<std::string_view, std::string_view>>;

TEST(HeadersTest, KeysAreRfc7230Tokens) {
  EXPECT_TRUE(IsHeaderKey("a"));
  EXPECT_TRUE(IsHeaderKey("Content-Type"));
  EXPECT_TRUE(IsHeaderKey("!#$%&'*+-.^_`|~09AZaz"));
  EXPECT_TRUE(IsHeaderKey(std::string(64, 'k')));
  EXPECT_FALSE(IsHeaderKey(""));
  EXPECT_FALSE(IsHeaderKey(std::string(65, 'k')));
  for (char c : std::string("  :\"(),/;<=>?@[\\]{}\x7f\x01\xc3")) {
    EXPECT_FALSE(IsHeaderKey(std::string("a") + c)) << static_cast<int>(c);
  }
}

// EncodeHeaders writes what protobuf writes for the same repeated field,
// and DecodeHeaders reads it back.
TEST(HeadersTest, EncodingMatchesProtobuf) {
  const Pairs pairs = {{"a", "1"}, {"b", ""}, {"a", std::string(300, 'x')}};
  wire::Pub pub;
  for (const auto& [k, v] : pairs) {
    auto* h = pub.add_headers();
    h->set_key(k);
    h->set_value(v);
  }
  EXPECT_EQ(EncodeHeaders(pairs), pub.SerializeAsString());
  Views back;
  ASSERT_TRUE(DecodeHeaders(EncodeHeaders(pairs), &back));
  ASSERT_EQ(back.size(), 3u);
  EXPECT_EQ(back[2].first, "a");
  EXPECT_EQ(back[2].second.size(), 300u);
  std::string again;
  AppendHeadersOf(pub.headers(), &again);
  EXPECT_EQ(again, EncodeHeaders(pairs));
}

TEST(HeadersTest, ValidateChecksEntriesKeysAndLimits) {
  const HeaderLimits limits{3, 10};
  EXPECT_TRUE(ValidateHeaders("", limits).ok());
  EXPECT_TRUE(
      ValidateHeaders(EncodeHeaders(Pairs{{"a", "1"}, {"b", "1234567"}}),
                      limits)
          .ok());
  auto code = [&](const std::string& bytes) {
    return WireCodeOf(ValidateHeaders(bytes, limits));
  };
  EXPECT_EQ(code(EncodeHeaders(Pairs{{"a b", "1"}})), wire::INVALID_HEADER);
  EXPECT_EQ(code(EncodeHeaders(Pairs{{"", "1"}})), wire::INVALID_HEADER);
  EXPECT_EQ(code(EncodeHeaders(Pairs{{"a", "1"}, {"b", "2"}, {"c", "3"},
                                     {"d", "4"}})),
            wire::HEADERS_TOO_LARGE);
  EXPECT_EQ(code(EncodeHeaders(Pairs{{"a", "1234567890"}})),
            wire::HEADERS_TOO_LARGE);
  // Malformed entries: a value without a key, a key twice, an unknown
  // field, a truncated entry, another field's tag.
  EXPECT_EQ(code(std::string("\x22\x03\x12\x01v", 5)), wire::INVALID_HEADER);
  EXPECT_EQ(code(std::string("\x22\x06\x0a\x01k\x0a\x01k", 8)),
            wire::INVALID_HEADER);
  EXPECT_EQ(code(std::string("\x22\x05\x0a\x01k\x18\x07", 7)),
            wire::INVALID_HEADER);
  EXPECT_EQ(code(std::string("\x22\x09\x0a\x01k", 5)), wire::INVALID_HEADER);
  EXPECT_EQ(code(std::string("\x0a\x03\x0a\x01k", 5)), wire::INVALID_HEADER);
  // Value before key is fine (protobuf allows any order).
  EXPECT_TRUE(ValidateHeaders(std::string("\x22\x06\x12\x01v\x0a\x01k", 8),
                              limits)
                  .ok());
}

// The fast PUB decoder hands over the header entries as one span, equal to
// what protobuf reads; entries interleaved with other fields go to protobuf.
TEST(HeadersTest, FastDecoderReadsHeaderSpans) {
  const Pairs pairs = {{"k1", "v1"}, {"k2", "v2"}};
  const std::string headers = EncodeHeaders(pairs);
  std::string frame(PubSize(7, "a.b", "r", true, headers), '\0');
  EncodePub(7, "a.b", "r", true, headers, frame.data());
  wire::Header reference;
  ASSERT_TRUE(reference.ParseFromString(frame));
  ASSERT_EQ(reference.pub().headers_size(), 2);
  EXPECT_EQ(reference.pub().headers(1).value(), "v2");

  PubView fast;
  ASSERT_TRUE(DecodePubFast(frame.data(), frame.size(), &fast));
  EXPECT_EQ(fast.headers, headers);
  EXPECT_EQ(fast.topic, "a.b");
  std::string scratch;
  EXPECT_EQ(PubViewOf(reference, &scratch).headers, headers);

  std::string interleaved_body;
  AppendHeader("k1", "v1", &interleaved_body);
  interleaved_body += std::string("\x0a\x03" "a.b", 5);
  AppendHeader("k2", "v2", &interleaved_body);
  std::string interleaved = std::string("\x22", 1);
  interleaved.push_back(static_cast<char>(interleaved_body.size()));
  interleaved += interleaved_body;
  EXPECT_FALSE(DecodePubFast(interleaved.data(), interleaved.size(), &fast));
  ASSERT_TRUE(reference.ParseFromString(interleaved));
  EXPECT_EQ(PubViewOf(reference, &scratch).headers, headers);

  std::string deliver(DeliverSize(3, "a.b", "", headers), '\0');
  EncodeDeliver(3, "a.b", "", headers, deliver.data());
  DeliverView d;
  ASSERT_TRUE(DecodeDeliverFast(deliver.data(), deliver.size(), &d));
  EXPECT_EQ(d.headers, headers);
  ASSERT_TRUE(reference.ParseFromString(deliver));
  EXPECT_EQ(reference.deliver().headers_size(), 2);
}

// A DELIVER in a batch carries the same headers.
TEST(HeadersTest, BatchEntriesKeepHeaders) {
  const std::string headers = EncodeHeaders(Pairs{{"x", "y"}});
  std::string body;
  BatchWriter w(&body);
  w.AppendDeliver(1, "t", "", headers, "p");
  w.AppendPub(0, "t", "", false, headers, "q");
  BatchReader r(body.data(), body.size());
  std::string_view h, p;
  ASSERT_TRUE(r.Next(&h, &p));
  DeliverView d;
  ASSERT_TRUE(DecodeDeliverFast(h.data(), h.size(), &d));
  EXPECT_EQ(d.headers, headers);
  ASSERT_TRUE(r.Next(&h, &p));
  PubView pub;
  ASSERT_TRUE(DecodePubFast(h.data(), h.size(), &pub));
  EXPECT_EQ(pub.headers, headers);
}

}  // namespace
}  // namespace sift::protocol
