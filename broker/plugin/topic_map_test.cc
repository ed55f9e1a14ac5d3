#include "broker/plugin/topic_map.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "broker/plugin/builtin_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::plugin {
namespace {

using ::sift::plugin::testing::ErrorOf;
using ::sift::plugin::testing::Msg;
using ::sift::plugin::testing::RunOne;
using ::testing::HasSubstr;

std::unique_ptr<Transform> Make(std::string from, std::string to,
                                topic::Limits limits = {}) {
  absl::StatusOr<std::unique_ptr<Transform>> t = TopicMapFactory(limits).Create(
      PluginConfig({{"from", from}, {"to", to}}));
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

// The topic `t` gives for `topic`, or the error message prefixed "error: ".
std::string Map(Transform& t, std::string_view topic) {
  absl::StatusOr<Message> m = RunOne(t, Msg(topic));
  if (!m.ok()) return "error: " + std::string(m.status().message());
  return std::string(m->topic());
}

std::string CreateError(std::vector<std::pair<std::string, std::string>> kv,
                        topic::Limits limits = {}) {
  absl::Status s = TopicMapFactory(limits).Create(PluginConfig(kv)).status();
  if (!s.ok()) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  }
  return ErrorOf(s);
}

TEST(TopicMapTest, StarCaptures) {
  auto t = Make("orders.*.created", "audit.orders.$1");
  EXPECT_EQ(Map(*t, "orders.eu.created"), "audit.orders.eu");
  EXPECT_EQ(Map(*t, "orders.us.created"), "audit.orders.us");
}

TEST(TopicMapTest, TopicsThatDoNotMatchPassUnchanged) {
  auto t = Make("orders.*.created", "audit.orders.$1");
  for (std::string_view topic :
       {"orders.eu", "orders.eu.created.v2", "orders.eu.deleted",
        "Orders.eu.created", "shipping.eu.created", "orders"}) {
    absl::StatusOr<Message> m = RunOne(*t, Msg(topic));
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->topic(), topic);
    EXPECT_FALSE(m->topic_changed()) << topic;
  }
}

TEST(TopicMapTest, GreaterCapturesTheDottedRest) {
  auto t = Make("orders.>", "archive.$1");
  EXPECT_EQ(Map(*t, "orders.eu"), "archive.eu");
  EXPECT_EQ(Map(*t, "orders.eu.created.v2"), "archive.eu.created.v2");
  EXPECT_EQ(Map(*t, "orders"), "orders");  // '>' needs at least one token
}

TEST(TopicMapTest, CapturesNumberedLeftToRightAndReorderable) {
  auto t = Make("a.*.b.*.>", "$3.x.$2.$1");
  EXPECT_EQ(Map(*t, "a.1.b.2.c.d"), "c.d.x.2.1");
  EXPECT_EQ(Map(*t, "a.1.b.2"), "a.1.b.2");  // '>' has nothing: no match
}

TEST(TopicMapTest, CapturesReusedInsideTokensOrUnused) {
  auto t = Make("*.*", "v$1.$1-$1");
  EXPECT_EQ(Map(*t, "eu.x"), "veu.eu-eu");
  auto everything = Make(">", "mirror.$1");
  EXPECT_EQ(Map(*everything, "a"), "mirror.a");
  EXPECT_EQ(Map(*everything, "a.b.c"), "mirror.a.b.c");
}

TEST(TopicMapTest, LiteralRename) {
  auto t = Make("old.name", "new.name");
  EXPECT_EQ(Map(*t, "old.name"), "new.name");
  EXPECT_EQ(Map(*t, "old.name.x"), "old.name.x");
}

TEST(TopicMapTest, DollarWithoutDigitIsLiteralAndDollarTwelveIsOneThenTwo) {
  auto t = Make("*", "$sift.$$1.$12");
  EXPECT_EQ(Map(*t, "x"), "$sift.$x.x2");
}

TEST(TopicMapTest, OnlyFirstNineWildcardsAreCaptures) {
  auto t = Make("*.*.*.*.*.*.*.*.*.*", "$9.$1");
  EXPECT_EQ(Map(*t, "1.2.3.4.5.6.7.8.9.10"), "9.1");
  EXPECT_EQ(Map(*t, "1.2.3.4.5.6.7.8.9"), "1.2.3.4.5.6.7.8.9");
}

TEST(TopicMapTest, KeepsEverythingButTheTopic) {
  auto t = Make("a.*", "b.$1");
  Message in("a.x", "_INBOX.c1.7", {{"k", "v"}, {"k2", "v2"}}, "body");
  absl::StatusOr<Message> m = RunOne(*t, in);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->topic(), "b.x");
  EXPECT_TRUE(m->topic_changed());
  EXPECT_EQ(m->reply_to(), "_INBOX.c1.7");
  EXPECT_EQ(m->headers(), in.headers());
  EXPECT_EQ(m->payload(), "body");
  EXPECT_FALSE(m->payload_changed());
}

TEST(TopicMapTest, MappedTopicOverTheLengthLimitFailsTheMessage) {
  topic::Limits limits;
  limits.max_length = 20;
  auto t = Make("a.>", "prefix.$1", limits);
  EXPECT_EQ(Map(*t, "a.123456789012"), "prefix.123456789012");  // 19 bytes
  EXPECT_EQ(Map(*t, "a.12345678901234"),
            "error: topic_map: \"a.12345678901234\" maps to an invalid topic: "
            "invalid topic \"prefix.12345678901234\": 21 bytes exceeds the "
            "limit of 20");
}

TEST(TopicMapTest, MappedTopicOverTheTokenLimitFailsTheMessage) {
  topic::Limits limits;
  limits.max_tokens = 4;
  auto t = Make("a.>", "x.y.$1", limits);
  EXPECT_EQ(Map(*t, "a.b.c"), "x.y.b.c");
  const std::string error = Map(*t, "a.b.c.d");
  EXPECT_THAT(error, HasSubstr("maps to an invalid topic"));
  EXPECT_THAT(error, HasSubstr("5 tokens exceeds the limit of 4"));
  // The error is a Status for the message, InvalidArgument.
  std::vector<Message> out;
  absl::Status s = t->Apply(Msg("a.b.c.d"), testing::AtMs(0), &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

TEST(TopicMapTest, ConfigErrors) {
  EXPECT_EQ(CreateError({{"to", "x"}}), "missing setting \"from\"");
  EXPECT_EQ(CreateError({{"from", "x"}}), "missing setting \"to\"");
  EXPECT_EQ(CreateError({{"from", "a"}, {"to", "b"}, {"into", "c"}}),
            "unknown setting \"into\" (known: from, to)");
  EXPECT_EQ(CreateError({{"from", "orders.>.x"}, {"to", "b"}}),
            "setting \"from\": invalid pattern \"orders.>.x\": '>' must be "
            "the last token (found at position 2 of 3)");
  EXPECT_EQ(CreateError({{"from", "a..b"}, {"to", "b"}}),
            "setting \"from\": invalid pattern \"a..b\": empty token at "
            "position 2 (tokens are separated by single dots)");
  EXPECT_EQ(CreateError({{"from", "a.*"}, {"to", "b.$2"}}),
            "setting \"to\": \"b.$2\" uses $2 but \"from\" has 1 wildcard");
  EXPECT_EQ(CreateError({{"from", "a"}, {"to", "b.$1"}}),
            "setting \"to\": \"b.$1\" uses $1 but \"from\" has 0 wildcards");
  EXPECT_EQ(CreateError({{"from", "a.*"}, {"to", "b.$0"}}),
            "setting \"to\": \"b.$0\" uses $0 at offset 2 (captures are "
            "numbered from $1)");
  EXPECT_EQ(CreateError({{"from", "a.*"}, {"to", "b.*"}}),
            "setting \"to\": invalid topic \"b.*\": wildcards are only "
            "allowed in subscription patterns ('*' at offset 2)");
  EXPECT_EQ(CreateError({{"from", "a.>"}, {"to", "b.>"}}),
            "setting \"to\": invalid topic \"b.>\": wildcards are only "
            "allowed in subscription patterns ('>' at offset 2)");
  EXPECT_EQ(CreateError({{"from", "a.*"}, {"to", "b..$1"}}),
            "setting \"to\": invalid topic \"b..$1\": empty token at "
            "position 2 (tokens are separated by single dots)");
  EXPECT_EQ(CreateError({{"from", "a.*"}, {"to", ""}}),
            "setting \"to\": invalid topic \"\": empty (must be 1 to 256 "
            "bytes)");
  EXPECT_EQ(CreateError({{"from", "a.*"}, {"to", "b c.$1"}}),
            "setting \"to\": invalid topic \"b c.$1\": character ' ' (0x20) "
            "at offset 1 is not allowed");
}

TEST(TopicMapTest, ToMustFitTheLimitsWithOneByteCaptures) {
  topic::Limits limits;
  limits.max_length = 10;
  limits.max_tokens = 3;
  // 8 literal bytes + one capture of at least 1 byte: fits.
  EXPECT_EQ(CreateError({{"from", "*"}, {"to", "abcdefg.$1"}}, limits), "OK");
  // 9 + 1 = 10 fits; 10 + 1 does not, however short the capture.
  EXPECT_EQ(CreateError({{"from", "*"}, {"to", "abcdefgh.$1"}}, limits), "OK");
  EXPECT_EQ(CreateError({{"from", "*"}, {"to", "abcdefghi.$1"}}, limits),
            "setting \"to\": \"abcdefghi.$1\" gives topics of at least 11 "
            "bytes, over the limit of 10");
  EXPECT_EQ(CreateError({{"from", "*"}, {"to", "a.b.c.$1"}}, limits),
            "setting \"to\": invalid topic \"a.b.c.$1\": 4 tokens exceeds "
            "the limit of 3");
  EXPECT_EQ(CreateError({{"from", "abcdefghijk"}, {"to", "x"}}, limits),
            "setting \"from\": invalid pattern \"abcdefghijk\": 11 bytes "
            "exceeds the limit of 10");
}

}  // namespace
}  // namespace sift::plugin
