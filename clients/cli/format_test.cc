#include "clients/cli/format.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"

namespace sift::cli {
namespace {

using ::testing::HasSubstr;

TEST(EscapeTest, PrintableAsciiPassesThrough) {
  EXPECT_EQ(Escape("hello, world {\"a\": 1}"), "hello, world {\"a\": 1}");
  EXPECT_EQ(Escape(""), "");
}

TEST(EscapeTest, ControlBytesAndBackslashAreEscaped) {
  EXPECT_EQ(Escape("a\nb\tc\rd\\e"), "a\\nb\\tc\\rd\\\\e");
  EXPECT_EQ(Escape(std::string("\0\x01\x7f", 3)), "\\x00\\x01\\x7f");
}

TEST(EscapeTest, WellFormedUtf8PassesThrough) {
  EXPECT_EQ(Escape("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"),
            "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(EscapeTest, MalformedUtf8IsEscapedByteByByte) {
  EXPECT_EQ(Escape("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(Escape("\xc3"), "\\xc3");                    // truncated
  EXPECT_EQ(Escape("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(Escape("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // surrogate
  EXPECT_EQ(Escape("\xc2\x85"), "\\xc2\\x85");           // C1 control NEL
  EXPECT_EQ(Escape("\xc3x"), "\\xc3x");                  // bad continuation
}

TEST(ExpandSequenceTest, ReplacesEveryPlaceholder) {
  EXPECT_EQ(ExpandSequence("msg {n} of {n}", 7), "msg 7 of 7");
  EXPECT_EQ(ExpandSequence("plain", 3), "plain");
  EXPECT_EQ(ExpandSequence("{m} {", 3), "{m} {");
}

TEST(MessagesTest, Plural) {
  EXPECT_EQ(Messages(0), "0 messages");
  EXPECT_EQ(Messages(1), "1 message");
  EXPECT_EQ(Messages(2), "2 messages");
}

wire::StatsReply SampleStats() {
  wire::StatsReply stats;
  stats.set_server_version("siftd 0.1.0");
  stats.set_uptime_ms(3723500);
  stats.set_messages_in(1200);
  stats.set_messages_out(3400);
  stats.set_bytes_in(120000);
  stats.set_bytes_out(340000);
  stats.set_clients(3);
  stats.set_subscriptions(12);
  stats.set_errors_sent(2);
  wire::DropCount* drop = stats.add_drops();
  drop->set_reason("slow_consumer");
  drop->set_count(12);
  drop = stats.add_drops();
  drop->set_reason("no_subscribers");
  drop->set_count(3);
  wire::TopicCount* topic = stats.add_topics();
  topic->set_topic("orders.eu.created");
  topic->set_messages_in(1000);
  topic->set_messages_out(3000);
  stats.set_topics_tracked(57);
  stats.set_connections(4);
  stats.set_connections_refused(1);
  stats.set_pending_bytes(2048);
  wire::ClientDrops* slow = stats.add_slow_clients();
  slow->set_client_id("c7-abc");
  slow->set_dropped(12);
  slow->set_pending_bytes(2048);
  return stats;
}

TEST(FormatStatsTest, ShowsEveryCounter) {
  const std::string text = FormatStats(SampleStats());
  EXPECT_THAT(text, HasSubstr("server          siftd 0.1.0\n"));
  EXPECT_THAT(text, HasSubstr("uptime          1h2m3s\n"));
  EXPECT_THAT(text, HasSubstr("clients         3\n"));
  EXPECT_THAT(text, HasSubstr("subscriptions   12\n"));
  EXPECT_THAT(text, HasSubstr("messages        in 1200, out 3400\n"));
  EXPECT_THAT(text, HasSubstr("bytes           in 120000, out 340000\n"));
  EXPECT_THAT(text, HasSubstr("errors sent     2\n"));
  EXPECT_THAT(text, HasSubstr("drops           15\n"));
  EXPECT_THAT(text, HasSubstr("  slow_consumer   12\n"));
  EXPECT_THAT(text, HasSubstr("  no_subscribers  3\n"));
  EXPECT_THAT(text,
              HasSubstr("topics          1 rows, busiest first; 57 topics "
                        "tracked\n"));
  EXPECT_THAT(text, HasSubstr("connections     4 open, 1 refused\n"));
  EXPECT_THAT(text, HasSubstr("pending bytes   2048\n"));
  EXPECT_THAT(text, HasSubstr("slow clients    1\n"));
  EXPECT_THAT(text, HasSubstr("  c7-abc            12            2048\n"));
  EXPECT_THAT(text,
              HasSubstr("  TOPIC                        IN           OUT\n"));
  EXPECT_THAT(text,
              HasSubstr("  orders.eu.created          1000          3000\n"));
}

TEST(FormatStatsTest, EmptyReply) {
  const std::string text = FormatStats(wire::StatsReply());
  EXPECT_THAT(text, HasSubstr("server          (unknown)\n"));
  EXPECT_THAT(text, HasSubstr("uptime          0\n"));
  EXPECT_THAT(text, HasSubstr("drops           0\n"));
  EXPECT_THAT(text, HasSubstr("topics          0 tracked\n"));
}

TEST(StatsToJsonTest, UsesProtoFieldNamesAndPrintsZeros) {
  absl::StatusOr<std::string> json = StatsToJson(SampleStats());
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"server_version\":\"siftd 0.1.0\""));
  EXPECT_THAT(*json, HasSubstr("\"messages_in\":\"1200\""));
  EXPECT_THAT(*json,
              HasSubstr("{\"reason\":\"slow_consumer\",\"count\":\"12\"}"));
  EXPECT_THAT(*json, HasSubstr("\"topic\":\"orders.eu.created\""));
  EXPECT_EQ(json->find('\n'), std::string::npos);

  json = StatsToJson(wire::StatsReply());
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"clients\":\"0\""));
}

}  // namespace
}  // namespace sift::cli
