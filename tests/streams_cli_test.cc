// Durable streams through the `sift` command and the C++ client against a
// real siftd started with --data_dir: stream add/info/ls/rm round trips,
// message-id dedup on confirmed publishes, fetch (ephemeral and durable,
// with acks), sub --stream replays, and the errors of each (unknown stream,
// streams disabled, bad settings).
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "tests/harness.h"
#include "tests/siftd_process.h"
#include "tests/test_util.h"

namespace sift::test {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(20);

struct Result {
  int code;
  std::string out;  // stdout and stderr
};

// Runs `sift --server=<siftd> args...` to completion (bounded).
Result Sift(const SiftdProcess& siftd, std::vector<std::string> args) {
  static int runs = 0;
  const std::string out =
      absl::StrCat(TestTmpDir(), "/sift-", getpid(), "-", ++runs, ".txt");
  std::vector<std::string> argv = {SiftCliPath(),
                                   absl::StrCat("--server=", siftd.endpoint())};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = Spawn(argv, out);
  EXPECT_GT(pid, 0);
  if (pid <= 0) return {-1, ""};
  const int code = Reap(pid, kTimeout);
  return {code, ReadFile(out)};
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

TEST(StreamsCliTest, AddInfoLsRmRoundTrip) {
  auto siftd = StartSiftdWithStreams();
  ASSERT_NE(siftd, nullptr);

  Result r = Sift(*siftd, {"stream", "ls"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "no streams\n");

  r = Sift(*siftd, {"stream", "add", "orders", "--subjects",
                    "orders.>,billing.*", "--max-msgs", "100", "--max-age",
                    "24h", "--fsync", "10ms", "--dedup-window", "1m"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "stream          orders\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "subjects        orders.>, billing.*\n"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "max msgs        100\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "max age         24h\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "fsync           10ms\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "dedup window    1m\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "messages        0\n")) << r.out;

  // The same again changes nothing; other settings under the name are
  // refused.
  r = Sift(*siftd, {"stream", "add", "orders", "--subjects",
                    "orders.>,billing.*", "--max-msgs", "100", "--max-age",
                    "24h", "--fsync", "10ms", "--dedup-window", "1m"});
  EXPECT_EQ(r.code, 0) << r.out;
  r = Sift(*siftd, {"stream", "add", "orders", "--subjects", "other.>"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "sift: cannot add stream orders: "))
      << r.out;

  r = Sift(*siftd, {"stream", "add", "audit", "--subjects", "audit.>"});
  ASSERT_EQ(r.code, 0) << r.out;
  r = Sift(*siftd, {"stream", "info", "orders"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "max msgs        100\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "consumers       0\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "since start     0 appended, "))
      << r.out;

  r = Sift(*siftd, {"stream", "ls"});
  EXPECT_EQ(r.code, 0) << r.out;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_TRUE(absl::StartsWith(lines[0], "NAME ")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "orders.>, billing.*")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "audit.>")) << r.out;

  r = Sift(*siftd, {"stats"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "streams         2\n")) << r.out;

  r = Sift(*siftd, {"stream", "rm", "audit"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "deleted stream audit\n");
  r = Sift(*siftd, {"stream", "rm", "audit"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "cannot delete stream audit")) << r.out;
  r = Sift(*siftd, {"stream", "info", "audit"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "sift: cannot get stream audit: "))
      << r.out;
  r = Sift(*siftd, {"stream", "rm", "orders"});
  EXPECT_EQ(r.code, 0) << r.out;
  r = Sift(*siftd, {"stream", "ls"});
  EXPECT_EQ(r.out, "no streams\n");
}

TEST(StreamsCliTest, BadSettingsAndStreamsDisabled) {
  auto siftd = StartSiftdWithStreams();
  ASSERT_NE(siftd, nullptr);
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"stream", "add", "bad name", "--subjects", "a.>"},
           {"stream", "add", "s", "--subjects", "a..b"},
       }) {
    Result r = Sift(*siftd, args);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_TRUE(absl::StrContains(r.out, "sift: cannot add stream")) << r.out;
  }
  // A name far over the limit is echoed in part, with its size (it was
  // echoed whole: 6 KB of \xHH here).
  std::string huge;
  for (int i = 0; i < 1000; ++i) huge += "ab\xe9";
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"stream", "add", huge, "--subjects", "a.>"},
           {"stream", "info", huge},
           {"fetch", huge},
       }) {
    Result r = Sift(*siftd, args);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_TRUE(absl::StrContains(r.out, "... (3000 bytes)")) << r.out;
    EXPECT_LT(r.out.size(), 600u) << r.out;
  }
  // A name past frame 0's bound (68,352 bytes here) is refused by the
  // client at once: the broker's BAD_FRAME answer (request id 0) matched
  // no request, which waited out its 5 s. An unknown plugin's name is
  // echoed in part (it was echoed whole, 60 KB).
  const std::string past_frame(100000, 'c');
  const std::string plugin(60000, 'f');
  for (const auto& [args, says] :
       std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"stream", "info", past_frame}, "over the broker's bound"},
           {{"stream", "rm", past_frame}, "over the broker's bound"},
           {{"fetch", past_frame}, "over the broker's bound"},
           {{"sub", "q.>", "--plugin", plugin},
            "no plugin named \"" + std::string(80, 'f') +
                "\"... (60000 bytes)"},
       }) {
    const absl::Time start = absl::Now();
    Result r = Sift(*siftd, args);
    EXPECT_EQ(r.code, 1) << r.out.substr(0, 300);
    EXPECT_LT(absl::Now() - start, absl::Seconds(3)) << args[0];
    EXPECT_TRUE(absl::StrContains(r.out, says)) << r.out.substr(0, 300);
    EXPECT_LT(r.out.size(), 800u) << r.out.substr(0, 300);
  }
  // The broker is fine after them.
  EXPECT_EQ(Sift(*siftd, {"stream", "ls"}).out, "no streams\n");

  auto plain = StartSiftd();
  ASSERT_NE(plain, nullptr);
  Result r = Sift(*plain, {"stream", "add", "s", "--subjects", "a.>"});
  EXPECT_EQ(r.code, 1) << r.out;
  r = Sift(*plain, {"fetch", "s"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "sift: cannot fetch from stream s: "))
      << r.out;
  auto client = Connect(plain->endpoint());
  ASSERT_NE(client, nullptr);
  absl::Status s = client->ListStreams(kTimeout).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

// A name with control characters in it (a stream, a consumer, a topic or
// pattern) is shown escaped in the one line of an error, where sift names
// it and where the broker's reason quotes it. Both used to print it raw:
// `sift stream info $'a\nb'` wrote three lines, and `$'\x1b[31m'` would
// have coloured the terminal.
TEST(StreamsCliTest, NamesInErrorsAreEscaped) {
  auto siftd = StartSiftdWithStreams();
  ASSERT_NE(siftd, nullptr);
  ASSERT_EQ(
      Sift(*siftd, {"stream", "add", "orders", "--subjects", "orders.>"}).code,
      0);
  const std::string topic = std::string("a\x01") + "b";  // not "\x01b"
  struct Case {
    std::vector<std::string> args;
    std::string starts;  // how its error starts
  };
  const Case cases[] = {
      {{"stream", "info", "a\nb"},
       "sift: cannot get stream a\\nb: no stream \"a\\nb\""},
      {{"stream", "rm", "a\x1b[31mb"},
       "sift: cannot delete stream a\\x1B[31mb: no stream \"a\\x1B[31mb\""},
      {{"stream", "add", "a\rb", "--subjects", "x.>"},
       "sift: cannot add stream a\\rb: "},
      {{"stream", "rm-consumer", "s\t1", "c\n2"},
       "sift: cannot delete consumer c\\n2 of stream s\\t1: "},
      {{"stream", "rm-consumer", "orders", "c\n2"},
       "sift: cannot delete consumer c\\n2 of stream orders: "},
      {{"fetch", "a\tb"},
       "sift: cannot fetch from stream a\\tb: no stream \"a\\tb\""},
      {{"sub", "orders.>", "--stream", "s\x01", "--timeout", "5s"},
       "sift: cannot subscribe to orders.>: no stream \"s\\x01\""},
      {{"sub", "orders.>", "--stream", "orders", "--consumer", "c\x7f",
        "--timeout", "5s"},
       "sift: cannot subscribe to orders.>: consumer name \"c\\x7F\""},
      {{"sub", "a\nb", "--timeout", "5s"}, "sift: cannot subscribe to a\\nb: "},
      {{"pub", topic, "x"}, "sift: publish to a\\x01b failed: "},
      {{"pub", topic, "x", "--confirm"}, "sift: publish to a\\x01b failed: "},
      {{"req", topic, "x", "--timeout", "5s"},
       "sift: request on a\\x01b failed: "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrJoin(c.args, " "));
    Result r = Sift(*siftd, c.args);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_TRUE(absl::StartsWith(r.out, c.starts)) << r.out;
    // One line, with no control character but its newline.
    ASSERT_TRUE(absl::EndsWith(r.out, "\n")) << r.out;
    const std::string line = r.out.substr(0, r.out.size() - 1);
    EXPECT_TRUE(std::none_of(line.begin(), line.end(), [](char ch) {
      return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f;
    })) << r.out;
  }
}

// Names that are not UTF-8 (Latin-1 "caf\xE9", a lone 0xFF): the broker
// quotes them in its ERROR, whose message is a proto3 string, so it must
// send them escaped, or the client cannot parse the answer: sift used to
// wait out its connect timeout ("no answer from the broker within 5s")
// behind a libprotobuf parse error.
TEST(StreamsCliTest, NamesThatAreNotUtf8AreAnsweredAtOnce) {
  auto siftd = StartSiftdWithStreams();
  ASSERT_NE(siftd, nullptr);
  ASSERT_EQ(
      Sift(*siftd, {"stream", "add", "orders", "--subjects", "orders.>"}).code,
      0);
  struct Case {
    std::vector<std::string> args;
    std::string has;  // in its one line
  };
  const Case cases[] = {
      {{"stream", "info", "caf\xE9", "--connect_timeout", "5s"},
       "no stream \"caf\\xE9\""},
      {{"stream", "rm", "\xFF", "--connect_timeout", "5s"},
       "no stream \"\\xFF\""},
      {{"fetch", "\xFF", "--connect_timeout", "5s"}, "no stream"},
      {{"stream", "rm-consumer", "orders", "\xFF", "--connect_timeout", "5s"},
       "\\xFF"},
      {{"stream", "add", "caf\xE9", "--subjects", "x.>",
        "--connect_timeout", "5s"},
       "caf\\xE9"},
      {{"stream", "add", "latin", "--subjects", "caf\xE9.>",
        "--connect_timeout", "5s"},
       "subject \"caf\\xE9.>\""},
      {{"fetch", "orders", "--consumer", "\xFF", "--connect_timeout", "5s"},
       "consumer name \"\\xFF\""},
      {{"sub", "orders.>", "--stream", "\xFF", "--timeout", "5s",
        "--connect_timeout", "5s"},
       "no stream \"\\xFF\""},
      {{"sub", "orders.>", "--stream", "orders", "--consumer", "\xFF",
        "--timeout", "5s", "--connect_timeout", "5s"},
       "consumer name \"\\xFF\""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::CHexEscape(absl::StrJoin(c.args, " ")));
    const absl::Time start = absl::Now();
    Result r = Sift(*siftd, c.args);
    EXPECT_LT(absl::Now() - start, absl::Seconds(4)) << r.out;
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_EQ(Lines(r.out).size(), 1u) << r.out;
    EXPECT_TRUE(absl::StrContains(r.out, c.has)) << r.out;
    EXPECT_FALSE(absl::StrContains(r.out, "no answer")) << r.out;
  }
}

// The bounds sift checks on stream add are the broker's: at each bound the
// broker takes the value, and one past it is a usage error (exit 2) before
// anything is sent. `--dedup-window 169h` used to reach the broker and
// exit 1.
TEST(StreamsCliTest, StreamAddBoundsAreTheBrokers) {
  auto siftd = StartSiftdWithStreams();
  ASSERT_NE(siftd, nullptr);
  Result r = Sift(*siftd, {"stream", "add", "edge", "--subjects", "edge.>",
                           "--dedup-window", "168h", "--max-bytes", "4KiB",
                           "--segment-bytes", "4096", "--max-age",
                           "9007199254740992"});
  EXPECT_EQ(r.code, 0) << r.out;
  r = Sift(*siftd, {"stream", "add", "big", "--subjects", "big.>",
                    "--segment-bytes", "1GiB"});
  EXPECT_EQ(r.code, 0) << r.out;
  for (const std::vector<std::string>& past :
       std::vector<std::vector<std::string>>{
           {"--dedup-window", "169h"},
           {"--dedup-window", "604800001"},
           {"--max-age", "9007199254740993"},
           {"--max-bytes", "4095"},
           {"--segment-bytes", "4095"},
           {"--segment-bytes", "1073741825"},
           {"--max-bytes", "8KiB", "--segment-bytes", "16KiB"},
       }) {
    std::vector<std::string> args = {"stream", "add", "past", "--subjects",
                                     "past.>"};
    args.insert(args.end(), past.begin(), past.end());
    r = Sift(*siftd, args);
    EXPECT_EQ(r.code, 2) << past[0] << " " << past[1] << ": " << r.out;
    EXPECT_TRUE(absl::StartsWith(r.out, "sift: stream add: ")) << r.out;
  }
  EXPECT_EQ(Sift(*siftd, {"stream", "info", "past"}).code, 1);
}

// A delayed publish the broker refuses is reported, with or without
// --confirm (it used to print "published 1 message" and exit 0).
TEST(StreamsCliTest, PubDelayPastTheBrokersLimitIsRefused) {
  auto siftd = StartSiftd({"--max_delay_ms=60000"});
  ASSERT_NE(siftd, nullptr);
  for (bool confirm : {false, true}) {
    std::vector<std::string> args = {"pub", "later.t", "x", "--delay", "2m"};
    if (confirm) args.push_back("--confirm");
    Result r = Sift(*siftd, args);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_TRUE(absl::StrContains(r.out, "publish to later.t failed")) << r.out;
  }
  Result ok = Sift(*siftd, {"pub", "later.t", "x", "--delay", "30s"});
  EXPECT_EQ(ok.code, 0) << ok.out;
}

// A retained publish past max_retained is delivered all the same, its value
// not kept (STORE_FULL "routed, but not retained"): sift exits 1 but does
// not call it a failed publish, since publishing it again would deliver it
// twice (a trial's reading of "publish to ret.x failed").
TEST(StreamsCliTest, PubRetainPastTheBoundSaysTheMessageWasDelivered) {
  auto siftd = StartSiftd({"--max_retained=1"});
  ASSERT_NE(siftd, nullptr);
  ASSERT_EQ(Sift(*siftd, {"pub", "ret.a", "x", "--retain"}).code, 0);
  Result r = Sift(*siftd, {"pub", "ret.b", "y", "--retain"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(absl::StrContains(
      r.out,
      "sift: the message to ret.b was routed (to its subscribers, if any) "
      "but not kept as its retained value: "))
      << r.out;
  EXPECT_TRUE(
      absl::StrContains(r.out, "holds 1 retained values (max_retained 1)"))
      << r.out;
  EXPECT_FALSE(absl::StrContains(r.out, "failed")) << r.out;
}

// With retained values turned off (max_retained 0) a retained publish is
// routed all the same, as configuration.md says, and not kept: it was
// refused whole ("not published", a trial).
TEST(StreamsCliTest, PubRetainWithRetainedValuesOffIsDeliveredNotKept) {
  auto siftd = StartSiftd({"--max_retained=0"});
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  auto live = client->Subscribe("off.>", {});
  ASSERT_TRUE(live.ok()) << live.status();
  Result r = Sift(*siftd, {"pub", "off.a", "v", "--retain"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(absl::StrContains(
      r.out,
      "sift: the message to off.a was routed (to its subscribers, if any) "
      "but not kept as its retained value: "))
      << r.out;
  EXPECT_TRUE(absl::StrContains(
      r.out, "retained values are off on this broker (max_retained is 0)"))
      << r.out;
  auto got = (*live)->Next(kTimeout);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->payload(), "v");
  // Several: those after the first are not called refused either (a trial
  // read "0 published, 2 refused" of three messages all delivered).
  r = Sift(*siftd, {"pub", "off.b", "w{n}", "--retain", "--count", "3"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_FALSE(absl::StrContains(r.out, "refused")) << r.out;
  for (const char* want : {"w1", "w2", "w3"}) {
    auto m = (*live)->Next(kTimeout);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->payload(), want);
  }
  // Nothing kept: a later subscriber gets no retained value.
  auto later = client->Subscribe("off.>", {});
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_FALSE((*later)->Next(absl::Milliseconds(300)).ok());
}

TEST(StreamsCliTest, PubMsgIdTwiceStoresOneRecord) {
  auto siftd = StartSiftdWithStreams();
  ASSERT_NE(siftd, nullptr);
  ASSERT_EQ(Sift(*siftd, {"stream", "add", "orders", "--subjects",
                          "orders.>"}).code,
            0);

  Result r = Sift(*siftd, {"pub", "orders.x", "hello", "--msg-id", "A",
                           "--confirm"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "published 1 message to orders.x (stream seq 1)\n");
  r = Sift(*siftd, {"pub", "orders.x", "hello again", "--msg-id", "A",
                    "--confirm"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out,
            "published 1 message to orders.x (stream seq 1, 1 duplicate)\n");
  r = Sift(*siftd, {"pub", "orders.x", "m{n}", "--msg-id", "B{n}", "--count",
                    "3", "--confirm"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "published 3 messages to orders.x (stream seqs 2..4)\n");
  // The header form is the same thing.
  r = Sift(*siftd, {"pub", "orders.x", "again", "--header", "sift-msg-id=B2",
                    "--confirm"});
  EXPECT_EQ(r.out,
            "published 1 message to orders.x (stream seq 3, 1 duplicate)\n");
  // Not on a stream: no seq.
  r = Sift(*siftd, {"pub", "elsewhere.x", "hi", "--confirm"});
  EXPECT_EQ(r.out, "published 1 message to elsewhere.x\n");

  r = Sift(*siftd, {"stream", "info", "orders"});
  EXPECT_TRUE(absl::StrContains(r.out, "messages        4 (seq 1..4)\n"))
      << r.out;
  r = Sift(*siftd, {"fetch", "orders", "--all", "--batch", "10"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out,
            "[orders.x #1] hello\n[orders.x #2] m1\n[orders.x #3] m2\n"
            "[orders.x #4] m3\n");
}

// A stream remembers at most --dedup-max-ids message ids: past it the
// oldest are forgotten even inside the dedup window, and a republish of one
// is stored again. That is counted (stream info), warned of in siftd's log,
// and a cap above the ids of the window dedups them all. The setting is
// compared on re-add and survives a restart. (A user republished 268,200
// ids within 11 s to a stream capped at 100,000 and got every one twice.)
TEST(StreamsCliTest, DedupMaxIdsCapsTheIdsRememberedAndSaysWhenItBites) {
  auto siftd = StartSiftdWithStreams();
  ASSERT_NE(siftd, nullptr);
  Result r = Sift(*siftd, {"stream", "add", "cap50", "--subjects", "cap50.>",
                           "--fsync", "never", "--dedup-max-ids", "50"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "dedup max ids   50\n")) << r.out;
  r = Sift(*siftd, {"stream", "add", "cap100", "--subjects", "cap100.>",
                    "--fsync", "never", "--dedup-max-ids", "100"});
  ASSERT_EQ(r.code, 0) << r.out;
  r = Sift(*siftd, {"stream", "add", "plain", "--subjects", "plain.>"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "dedup max ids   100000\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(
      r.out, "ids forgotten   0 inside the dedup window since start\n"))
      << r.out;

  for (const std::string stream : {"cap50", "cap100"}) {
    r = Sift(*siftd, {"pub", stream + ".z", "m", "--count", "60", "--msg-id",
                      "f-{n}", "--confirm"});
    ASSERT_EQ(r.code, 0) << r.out;
    r = Sift(*siftd,
             {"pub", stream + ".z", "x", "--msg-id", "f-1", "--confirm"});
    ASSERT_EQ(r.code, 0) << r.out;
  }
  // cap50: f-1 was forgotten 10 ids in, well inside the 2-minute window,
  // and is stored again (which pushes f-11 out too).
  r = Sift(*siftd, {"stream", "info", "cap50"});
  EXPECT_TRUE(absl::StrContains(r.out, "messages        61 (seq 1..61)\n"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out,
                                "ids forgotten   11 inside the dedup window "
                                "since start: a republish of them is stored "
                                "again; raise dedup max ids\n"))
      << r.out;
  // cap100: every id is remembered; the republish is a duplicate.
  r = Sift(*siftd, {"stream", "info", "cap100"});
  EXPECT_TRUE(absl::StrContains(r.out, "messages        60 (seq 1..60)\n"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "ids forgotten   0 inside")) << r.out;
  EXPECT_TRUE(siftd->WaitForLog("ids_forgotten_early=", kTimeout))
      << siftd->LogTail();
  const std::string log = siftd->ReadLog();
  EXPECT_TRUE(absl::StrContains(log, "stream=cap50 ids_forgotten_early="))
      << log;
  EXPECT_FALSE(absl::StrContains(log, "stream=cap100 ids_forgotten_early="))
      << log;

  // The client's view of the same.
  {
    auto client = Connect(siftd->endpoint());
    ASSERT_NE(client, nullptr);
    absl::StatusOr<StreamInfo> info = client->GetStreamInfo("cap50", kTimeout);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->config.dedup_max_ids, 50u);
    EXPECT_EQ(info->dedup_ids_forgotten_early, 11u);
  }

  // A re-add compares it: the same is fine, another cap (or the default)
  // is other settings.
  r = Sift(*siftd, {"stream", "add", "cap50", "--subjects", "cap50.>",
                    "--fsync", "never", "--dedup-max-ids", "50"});
  EXPECT_EQ(r.code, 0) << r.out;
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"stream", "add", "cap50", "--subjects", "cap50.>", "--fsync",
            "never", "--dedup-max-ids", "100"},
           {"stream", "add", "cap50", "--subjects", "cap50.>", "--fsync",
            "never"},
       }) {
    r = Sift(*siftd, args);
    EXPECT_EQ(r.code, 1) << r.out;
  }
  r = Sift(*siftd, {"stream", "add", "s", "--subjects", "s.>",
                    "--dedup-max-ids", "0"});
  EXPECT_EQ(r.code, 2) << r.out;

  // After a restart: the settings are the same, and the ids of the window
  // are reloaded up to the cap. The count starts again from 0: what the
  // run before forgot is not counted (nor warned about) again.
  ASSERT_TRUE(siftd->Restart().ok()) << siftd->LogTail();
  r = Sift(*siftd, {"stream", "info", "cap50"});
  EXPECT_TRUE(absl::StrContains(r.out, "dedup max ids   50\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "ids forgotten   0 inside")) << r.out;
  r = Sift(*siftd, {"stream", "info", "cap100"});
  EXPECT_TRUE(absl::StrContains(r.out, "dedup max ids   100\n")) << r.out;
  r = Sift(*siftd, {"pub", "cap100.z", "y", "--msg-id", "f-2", "--confirm"});
  EXPECT_TRUE(absl::StrContains(r.out, "1 duplicate")) << r.out;
  r = Sift(*siftd, {"pub", "cap50.z", "y", "--msg-id", "f-60", "--confirm"});
  EXPECT_TRUE(absl::StrContains(r.out, "1 duplicate")) << r.out;
  r = Sift(*siftd, {"stream", "info", "cap100"});
  EXPECT_TRUE(absl::StrContains(r.out, "messages        60 (seq 1..60)\n"))
      << r.out;
}

// The message id, as --msg-id or as a header Msg-Id (any case), is sent
// as the header sift-msg-id where it was given among the headers; it used
// to be moved after them all.
TEST(StreamsCliTest, PubKeepsTheHeadersInTheOrderGiven) {
  auto siftd = StartSiftdWithStreams();
  ASSERT_NE(siftd, nullptr);
  ASSERT_EQ(Sift(*siftd, {"stream", "add", "orders", "--subjects",
                          "orders.>"}).code,
            0);
  Result r = Sift(*siftd, {"pub", "orders.x", "one", "--header", "a=1",
                           "--header", "Msg-Id=A", "--header", "b=2",
                           "--confirm"});
  EXPECT_EQ(r.code, 0) << r.out;
  r = Sift(*siftd, {"pub", "orders.x", "m{n}", "--count", "2", "--header",
                    "a=1", "--msg-id", "B{n}", "--header", "b=2"});
  EXPECT_EQ(r.code, 0) << r.out;
  r = Sift(*siftd, {"fetch", "orders", "--all", "--batch", "10", "--wait",
                    "2s", "--headers"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out,
            "[orders.x #1] one\n  a: 1\n  sift-msg-id: A\n  b: 2\n"
            "[orders.x #2] m1\n  a: 1\n  sift-msg-id: B1\n  b: 2\n"
            "[orders.x #3] m2\n  a: 1\n  sift-msg-id: B2\n  b: 2\n");
  // Still the id the stream deduplicates on.
  r = Sift(*siftd, {"pub", "orders.x", "again", "--header", "z=0",
                    "--header", "msg-id=B2", "--confirm"});
  EXPECT_EQ(r.out,
            "published 1 message to orders.x (stream seq 3, 1 duplicate)\n");
}

TEST(StreamsCliTest, FetchBatchesFromWhereAsked) {
  auto siftd = StartSiftdWithStreams();
  ASSERT_NE(siftd, nullptr);
  ASSERT_EQ(Sift(*siftd, {"stream", "add", "orders", "--subjects",
                          "orders.>"}).code,
            0);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  for (int i = 1; i <= 6; ++i) {
    PublishAck ack;
    ASSERT_TRUE(client
                    ->PublishConfirmedWith(
                        i % 2 == 1 ? "orders.eu" : "orders.us",
                        absl::StrCat("m", i), PublishOptions{}, kTimeout, &ack)
                    .ok());
    EXPECT_EQ(ack.stream_seq, static_cast<uint64_t>(i));
    EXPECT_FALSE(ack.duplicate);
  }

  Result r = Sift(*siftd, {"fetch", "orders", "--all", "--batch", "3"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "[orders.eu #1] m1\n[orders.us #2] m2\n[orders.eu #3] m3\n");
  // Unnamed fetches keep nothing: the default (--all) starts over.
  r = Sift(*siftd, {"fetch", "orders"});
  EXPECT_EQ(r.out, "[orders.eu #1] m1\n");
  r = Sift(*siftd, {"fetch", "orders", "--from-seq", "5", "--batch", "10"});
  EXPECT_EQ(r.out, "[orders.eu #5] m5\n[orders.us #6] m6\n");
  r = Sift(*siftd, {"fetch", "orders", "--batch", "10", "--filter-topic",
                    "orders.us"});
  EXPECT_EQ(r.out, "[orders.us #2] m2\n[orders.us #4] m4\n[orders.us #6] m6\n");
  // Nothing new within --wait: no output, exit 0.
  const absl::Time start = absl::Now();
  r = Sift(*siftd, {"fetch", "orders", "--new", "--wait", "300ms"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));

  // A durable consumer goes on where the last fetch ended.
  r = Sift(*siftd, {"fetch", "orders", "--consumer", "billing", "--batch",
                    "2", "--ack"});
  EXPECT_EQ(r.out, "[orders.eu #1] m1\n[orders.us #2] m2\n");
  r = Sift(*siftd, {"fetch", "orders", "--consumer", "billing", "--batch",
                    "2", "--ack"});
  EXPECT_EQ(r.out, "[orders.eu #3] m3\n[orders.us #4] m4\n");
  r = Sift(*siftd, {"fetch", "orders", "--consumer", "nosy", "--batch", "2"});
  EXPECT_EQ(r.out, "[orders.eu #1] m1\n[orders.us #2] m2\n");
  r = Sift(*siftd, {"fetch", "orders", "--consumer", "nosy", "--batch", "9"});
  EXPECT_EQ(r.out,
            "[orders.eu #3] m3\n[orders.us #4] m4\n[orders.eu #5] m5\n"
            "[orders.us #6] m6\n");
  r = Sift(*siftd, {"stream", "info", "orders"});
  EXPECT_TRUE(absl::StrContains(r.out, "consumers       2\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "billing")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "IN FLIGHT  WAITING  ATTACHED"))
      << r.out;

  r = Sift(*siftd, {"stream", "rm-consumer", "orders", "billing"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "deleted consumer billing of stream orders\n");
  r = Sift(*siftd, {"stream", "rm-consumer", "orders", "billing"});
  EXPECT_EQ(r.code, 1) << r.out;
  // A new consumer of that name starts afresh.
  r = Sift(*siftd, {"fetch", "orders", "--consumer", "billing"});
  EXPECT_EQ(r.out, "[orders.eu #1] m1\n");

  r = Sift(*siftd, {"fetch", "nope"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "sift: cannot fetch from stream nope: "))
      << r.out;
}

TEST(StreamsCliTest, SubStreamReplaysThenFollows) {
  auto siftd = StartSiftdWithStreams();
  ASSERT_NE(siftd, nullptr);
  ASSERT_EQ(Sift(*siftd, {"stream", "add", "orders", "--subjects",
                          "orders.>"}).code,
            0);
  ASSERT_EQ(Sift(*siftd, {"pub", "orders.x", "m{n}", "--count", "3",
                          "--confirm"}).code,
            0);

  Result r = Sift(*siftd, {"sub", "orders.>", "--stream", "orders", "--all",
                           "--count", "3", "--timeout", "10s"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "[orders.x #1] m1\n[orders.x #2] m2\n[orders.x #3] m3\n");
  r = Sift(*siftd, {"sub", "orders.>", "--stream", "orders", "--from-seq",
                    "2", "--count", "2", "--timeout", "10s"});
  EXPECT_EQ(r.out, "[orders.x #2] m2\n[orders.x #3] m3\n");

  // Replay, then a record appended while subscribed.
  const std::string out = absl::StrCat(TestTmpDir(), "/follow.txt");
  const pid_t sub =
      Spawn({SiftCliPath(), absl::StrCat("--server=", siftd->endpoint()),
             "sub", "orders.>", "--stream", "orders", "--all", "--count", "4",
             "--timeout", "20s"},
            out);
  ASSERT_GT(sub, 0);
  const absl::Time deadline = absl::Now() + kTimeout;
  while (Lines(ReadFile(out)).size() < 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(Sift(*siftd, {"pub", "orders.y", "live", "--confirm"}).code, 0);
  EXPECT_EQ(Reap(sub, kTimeout), 0);
  EXPECT_EQ(ReadFile(out),
            "[orders.x #1] m1\n[orders.x #2] m2\n[orders.x #3] m3\n"
            "[orders.y #4] live\n");

  // A durable consumer with acks resumes after what it acknowledged.
  r = Sift(*siftd, {"sub", "orders.>", "--stream", "orders", "--consumer",
                    "audit", "--all", "--ack", "--count", "2", "--timeout",
                    "10s"});
  EXPECT_EQ(r.out, "[orders.x #1] m1\n[orders.x #2] m2\n");
  r = Sift(*siftd, {"sub", "orders.>", "--stream", "orders", "--consumer",
                    "audit", "--ack", "--count", "2", "--timeout", "10s"});
  EXPECT_EQ(r.out, "[orders.x #3] m3\n[orders.y #4] live\n");

  r = Sift(*siftd, {"sub", "orders.>", "--stream", "nope", "--count", "1",
                    "--timeout", "5s"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "cannot subscribe to orders.>")) << r.out;
}

// The client calls themselves, against the real broker.
TEST(StreamsClientTest, AdminFetchAndAcks) {
  auto siftd = StartSiftdWithStreams();
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);

  StreamConfig config;
  config.name = "jobs";
  config.subjects = {"jobs.>"};
  config.max_msgs = 50;
  absl::StatusOr<StreamInfo> added = client->AddStream(config, kTimeout);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->config.name, "jobs");
  EXPECT_EQ(added->config.max_msgs, 50u);
  EXPECT_EQ(added->messages, 0u);

  absl::Status missing = client->GetStreamInfo("nope", kTimeout).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  missing = client->DeleteStream("nope", kTimeout);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;

  const absl::Time before = absl::Now() - absl::Seconds(1);
  for (int i = 1; i <= 3; ++i) {
    PublishOptions options;
    options.msg_id = absl::StrCat("job-", i);
    PublishAck ack;
    ASSERT_TRUE(client
                    ->PublishConfirmedWith("jobs.resize", absl::StrCat("j", i),
                                           options, kTimeout, &ack)
                    .ok());
    EXPECT_EQ(ack.stream_seq, static_cast<uint64_t>(i));
  }

  FetchOptions fetch;
  fetch.start.stream = "jobs";
  fetch.start.consumer = "workers";
  fetch.start.deliver = DeliverPolicy::kAll;
  fetch.batch = 2;
  fetch.ack = AckOptions{};
  fetch.ack->ack_wait = absl::Milliseconds(300);
  absl::StatusOr<std::vector<Message>> got = client->Fetch(fetch, kTimeout);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].stream_seq(), 1u);
  EXPECT_EQ((*got)[1].stream_seq(), 2u);
  EXPECT_NE((*got)[0].delivery_id(), 0u);
  EXPECT_EQ((*got)[0].header(kMsgIdHeader), "job-1");
  EXPECT_GE(absl::FromUnixMillis((*got)[0].timestamp_ms()), before);
  EXPECT_LE(absl::FromUnixMillis((*got)[0].timestamp_ms()),
            absl::Now() + absl::Seconds(1));
  // Ack the first only: the second comes again after its ack wait.
  ASSERT_TRUE(client->Ack((*got)[0]).ok());

  std::vector<uint64_t> seqs;
  const absl::Time deadline = absl::Now() + kTimeout;
  while (seqs.size() < 2 && absl::Now() < deadline) {
    fetch.max_wait = absl::Milliseconds(200);
    got = client->Fetch(fetch, kTimeout);
    ASSERT_TRUE(got.ok()) << got.status();
    for (const Message& m : *got) {
      seqs.push_back(m.stream_seq());
      ASSERT_TRUE(client->Ack(m).ok());
    }
  }
  // Seq 3 and the redelivered seq 2, in some order, once each.
  std::sort(seqs.begin(), seqs.end());
  EXPECT_EQ(seqs, (std::vector<uint64_t>{2, 3}));

  absl::StatusOr<std::vector<StreamInfo>> list = client->ListStreams(kTimeout);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].messages, 3u);
  ASSERT_EQ((*list)[0].consumers.size(), 1u);
  EXPECT_EQ((*list)[0].consumers[0].name, "workers");

  EXPECT_TRUE(client->DeleteConsumer("jobs", "workers", kTimeout).ok());
  EXPECT_EQ(client->DeleteConsumer("jobs", "workers", kTimeout).code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(client->DeleteStream("jobs", kTimeout).ok());
}

}  // namespace
}  // namespace sift::test
