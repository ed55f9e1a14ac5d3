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
  EXPECT_EQ(Escape(std::string("\0\x01\x7f", 3)), "\\x00\\x01\\x7F");
}

TEST(NameInErrorTest, LongNamesAreCutWithTheirSize) {
  EXPECT_EQ(NameInError("orders"), "orders");
  EXPECT_EQ(NameInError(""), "\"\"");  // seen, not a double space
  EXPECT_EQ(NameInError(std::string(80, 'a')), std::string(80, 'a'));
  EXPECT_EQ(NameInError(std::string(3000, 'a')),
            std::string(80, 'a') + "... (3000 bytes)");
  // Cut before a UTF-8 character, not inside it; bytes that are not
  // UTF-8 are escaped as in Escape.
  const std::string accented = std::string(79, 'a') + "\xc3\xa9" + "zz";
  EXPECT_EQ(NameInError(accented), std::string(79, 'a') + "... (83 bytes)");
  EXPECT_EQ(NameInError(std::string(81, '\xff')).substr(0, 8), "\\xFF\\xFF");
}

TEST(EscapeTest, WellFormedUtf8PassesThrough) {
  EXPECT_EQ(Escape("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"),
            "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(EscapeTest, MalformedUtf8IsEscapedByteByByte) {
  EXPECT_EQ(Escape("\xff\xfe"), "\\xFF\\xFE");
  EXPECT_EQ(Escape("\xc3"), "\\xC3");                    // truncated
  EXPECT_EQ(Escape("\xc0\xaf"), "\\xC0\\xAF");           // overlong '/'
  EXPECT_EQ(Escape("\xed\xa0\x80"), "\\xED\\xA0\\x80");  // surrogate
  EXPECT_EQ(Escape("\xc2\x85"), "\\xC2\\x85");           // C1 control NEL
  EXPECT_EQ(Escape("\xc3x"), "\\xC3x");                  // bad continuation
}

// A reason quoting a name raw (the broker's `no stream "a<LF>b"`) becomes
// one line; one that escapes its name already keeps its escapes as they
// are.
TEST(OneLineTest, EscapesAllButBackslash) {
  EXPECT_EQ(OneLine("no stream \"a\nb\""), "no stream \"a\\nb\"");
  EXPECT_EQ(OneLine(std::string("\0\x01\x7f\r\t", 5)), "\\x00\\x01\\x7F\\r\\t");
  EXPECT_EQ(OneLine("invalid topic \"a\\x01b\""), "invalid topic \"a\\x01b\"");
  EXPECT_EQ(OneLine("h\xc3\xa9 \xff"), "h\xc3\xa9 \\xFF");
  EXPECT_EQ(OneLine(Escape("a\\\n")), Escape("a\\\n"));
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

namespace sift::cli {
namespace {

TEST(StreamFormatTest, MessageLine) {
  EXPECT_EQ(MessageLine("a.b", 0, "hi\n"), "[a.b] hi\\n");
  EXPECT_EQ(MessageLine("a.b", 42, "hi"), "[a.b #42] hi");
}

TEST(StreamFormatTest, StreamSeqsNote) {
  EXPECT_EQ(StreamSeqsNote({}), "");
  EXPECT_EQ(StreamSeqsNote({PublishAck{}, PublishAck{}}), "");
  EXPECT_EQ(StreamSeqsNote({PublishAck{7, false}}), " (stream seq 7)");
  EXPECT_EQ(StreamSeqsNote({PublishAck{7, true}}),
            " (stream seq 7, 1 duplicate)");
  EXPECT_EQ(StreamSeqsNote({PublishAck{9, false}, PublishAck{7, false},
                            PublishAck{7, true}, PublishAck{7, true}}),
            " (2 stream seqs from 7 to 9, not contiguous, 2 duplicates)");
  // Seqs 8 went to another publisher: not "7..10".
  EXPECT_EQ(StreamSeqsNote({PublishAck{7, false}, PublishAck{9, false},
                            PublishAck{10, false}}),
            " (3 stream seqs from 7 to 10, not contiguous)");
  EXPECT_EQ(StreamSeqsNote({PublishAck{7, false}, PublishAck{8, false},
                            PublishAck{9, false}}),
            " (stream seqs 7..9)");
}

StreamInfo SampleStream() {
  StreamInfo info;
  info.config.name = "orders";
  info.config.subjects = {"orders.>", "billing.*"};
  info.config.max_age = absl::Hours(24);
  info.config.max_msgs = 1000;
  info.config.fsync = "always";
  info.config.dedup_window = absl::Minutes(2);
  info.config.dedup_max_ids = 100000;
  info.config.segment_max_bytes = 64 << 20;
  info.first_seq = 3;
  info.last_seq = 12;
  info.durable_seq = 11;
  info.messages = 10;
  info.bytes = 4096;
  info.consumers.push_back({"billing", 4, 6, 2, true, 1});
  return info;
}

TEST(StreamFormatTest, StreamInfo) {
  const std::string text = FormatStreamInfo(SampleStream());
  EXPECT_THAT(text, HasSubstr("stream          orders\n"));
  EXPECT_THAT(text, HasSubstr("subjects        orders.>, billing.*\n"));
  EXPECT_THAT(text, HasSubstr("messages        10 (seq 3..12)\n"));
  EXPECT_THAT(text, HasSubstr("last seq        12 written, 11 durable\n"));
  EXPECT_THAT(text, HasSubstr("bytes           4096\n"));
  EXPECT_THAT(text, HasSubstr("max age         24h\n"));
  EXPECT_THAT(text, HasSubstr("max bytes       unlimited\n"));
  EXPECT_THAT(text, HasSubstr("max msgs        1000\n"));
  EXPECT_THAT(text, HasSubstr("fsync           always\n"));
  EXPECT_THAT(text, HasSubstr("dedup window    2m\n"));
  EXPECT_THAT(text, HasSubstr("dedup max ids   100000\n"));
  EXPECT_THAT(text,
              HasSubstr("ids forgotten   0 inside the dedup window since "
                        "start\n"));
  EXPECT_THAT(text, HasSubstr("segment bytes   67108864\n"));
  EXPECT_THAT(text, HasSubstr("consumers       1\n"));
  EXPECT_THAT(text, HasSubstr(
                        "  billing             4             6          2        1"
                        "  yes\n"));
}

TEST(StreamFormatTest, StreamInfoSaysWhenDedupForgotIdsEarly) {
  StreamInfo info = SampleStream();
  info.dedup_ids_forgotten_early = 168200;
  EXPECT_THAT(FormatStreamInfo(info),
              HasSubstr("ids forgotten   168200 inside the dedup window "
                        "since start: a republish of them is stored again; "
                        "raise dedup max ids\n"));
  info.config.dedup_max_ids = 0;  // a broker that does not say
  EXPECT_THAT(FormatStreamInfo(info),
              HasSubstr("dedup max ids   (broker default)\n"));
}

TEST(StreamFormatTest, StreamList) {
  EXPECT_EQ(FormatStreamList({}), "no streams\n");
  const std::string text = FormatStreamList({SampleStream()});
  EXPECT_THAT(text, HasSubstr("NAME      MESSAGES"));
  EXPECT_THAT(text, HasSubstr("orders          10          4096           3"
                              "          12          1  orders.>, "
                              "billing.*\n"));
}

TEST(StreamFormatTest, StatsShowStreams) {
  wire::StatsReply stats;
  stats.set_streams(3);
  EXPECT_THAT(FormatStats(stats), HasSubstr("streams         3\n"));
}

}  // namespace
}  // namespace sift::cli
