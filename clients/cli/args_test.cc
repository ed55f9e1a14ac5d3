#include "clients/cli/args.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<Args> Parse(std::vector<std::string> argv,
                           std::string_view env_server = "") {
  return ParseArgs(argv, env_server);
}

// The usage error for `argv`, or "" if it parsed.
std::string ErrorOf(std::vector<std::string> argv) {
  absl::StatusOr<Args> args = Parse(std::move(argv));
  if (args.ok()) return "";
  EXPECT_EQ(args.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(args.status().message());
}

TEST(ParseArgsTest, PubWithDefaults) {
  absl::StatusOr<Args> args = Parse({"pub", "orders.eu", "hello"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kPub);
  EXPECT_EQ(args->topic, "orders.eu");
  EXPECT_EQ(args->message, "hello");
  EXPECT_EQ(args->count, 1);
  EXPECT_FALSE(args->confirm);
  EXPECT_EQ(args->server, "tcp://127.0.0.1:7440");
  EXPECT_EQ(args->connect_timeout, absl::Seconds(5));
}

TEST(ParseArgsTest, FlagsAnywhereInBothForms) {
  absl::StatusOr<Args> args =
      Parse({"--server", "ipc:///tmp/s", "pub", "--count=3", "t", "--confirm",
             "m {n}", "--connect_timeout", "750ms"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kPub);
  EXPECT_EQ(args->server, "ipc:///tmp/s");
  EXPECT_EQ(args->count, 3);
  EXPECT_TRUE(args->confirm);
  EXPECT_EQ(args->topic, "t");
  EXPECT_EQ(args->message, "m {n}");
  EXPECT_EQ(args->connect_timeout, absl::Milliseconds(750));
}

TEST(ParseArgsTest, DashedFlagNamesAndSwitchValues) {
  absl::StatusOr<Args> args =
      Parse({"pub", "t", "m", "--connect-timeout=2s", "--confirm=false"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->connect_timeout, absl::Seconds(2));
  EXPECT_FALSE(args->confirm);
}

TEST(ParseArgsTest, DoubleDashEndsFlags) {
  absl::StatusOr<Args> args = Parse({"pub", "t", "--", "--count"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->message, "--count");
  EXPECT_EQ(args->count, 1);
}

// A flag given twice is a usage error, named with both values (the last
// one used to win, so `--count 5 --count 7` sent 7 without a word), except
// the repeatable ones: --header, --subjects, --plugin and --with.
TEST(ParseArgsTest, AFlagGivenTwiceIsAUsageError) {
  EXPECT_EQ(ErrorOf({"pub", "t", "m", "--count", "5", "--count", "7"}),
            "pub: --count given twice ('5', then '7'); give it once (see "
            "sift pub --help)");
  EXPECT_EQ(ErrorOf({"sub", "j", "--ack", "--ack"}),
            "sub: --ack given twice; give it once (see sift sub --help)");
  // Spelled two ways, or a switch with and without a value: both in full.
  EXPECT_EQ(ErrorOf({"stream", "add", "s", "--subjects", "a", "--max-age",
                     "1h", "--max_age=2h"}),
            "stream add: --max_age given twice (--max-age='1h', then "
            "--max_age='2h'); give it once (see sift stream add --help)");
  EXPECT_EQ(ErrorOf({"pub", "t", "m", "--confirm", "--confirm=false"}),
            "pub: --confirm given twice (--confirm, then --confirm='false'); "
            "give it once (see sift pub --help)");
  EXPECT_EQ(ErrorOf({"--server", "tcp://a:1", "stats", "--server",
                     "tcp://b:1"}),
            "stats: --server given twice ('tcp://a:1', then 'tcp://b:1'); "
            "give it once (see sift stats --help)");

  // Every flag that is not repeatable, given twice with a value it takes.
  struct Case {
    std::vector<std::string> argv;  // parses with `flag` once
    std::vector<std::string> flag;  // the flag and its value, if any
  };
  const std::vector<std::string> pub = {"pub", "t", "m"};
  const std::vector<std::string> sub = {"sub", "t"};
  const std::vector<std::string> ack = {"sub", "t", "--ack"};
  const std::vector<std::string> slow = {"sub", "t", "--slow", "drop-oldest"};
  const std::vector<std::string> stream = {"sub", "t", "--stream", "s"};
  const std::vector<std::string> reply = {"reply", "t", "--echo"};
  const std::vector<std::string> add = {"stream", "add", "s", "--subjects",
                                        "a.>"};
  const std::vector<Case> cases = {
      {{"stats"}, {"--server", "tcp://h:1"}},
      {{"stats"}, {"--connect-timeout", "2s"}},
      {{"stats"}, {"--json"}},
      {pub, {"--count", "3"}},
      {pub, {"--confirm"}},
      {{"pub", "t", "m", "--confirm"}, {"--window", "8"}},
      {pub, {"--retain"}},
      {{"pub", "t"}, {"--file", "f"}},
      {pub, {"--delay", "1s"}},
      {pub, {"--msg-id", "a"}},
      {sub, {"--count", "3"}},
      {sub, {"--queue", "g"}},
      {sub, {"--timeout", "1s"}},
      {sub, {"--headers"}},
      {sub, {"--filter", "a == 'b'"}},
      {sub, {"--ack"}},
      {ack, {"--ack-wait", "1s"}},
      {ack, {"--max-deliver", "3"}},
      {ack, {"--max-in-flight", "3"}},
      {ack, {"--max-queued", "3"}},
      {ack, {"--backoff-initial", "1s"}},
      {ack, {"--backoff-multiplier", "2"}},
      {ack, {"--backoff-max", "2s"}},
      {ack, {"--backoff-jitter", "0.1"}},
      {ack, {"--nack"}},
      {ack, {"--nack-delay", "1s"}},
      {sub, {"--slow", "drop-oldest"}},
      {slow, {"--max-pending", "1MiB"}},
      {slow, {"--max-pending-msgs", "5"}},
      {sub, {"--stream", "s"}},
      {stream, {"--consumer", "c"}},
      {stream, {"--all"}},
      {stream, {"--new"}},
      {stream, {"--from-seq", "3"}},
      {stream, {"--since", "90s"}},
      {{"req", "t", "m"}, {"--timeout", "1s"}},
      {{"req", "t", "m"}, {"--headers"}},
      {{"reply", "t"}, {"--echo"}},
      {{"reply", "t"}, {"--response", "r"}},
      {reply, {"--count", "3"}},
      {reply, {"--queue", "g"}},
      {{"fetch", "s"}, {"--batch", "5"}},
      {{"fetch", "s"}, {"--wait", "1s"}},
      {{"fetch", "s"}, {"--filter-topic", "a.>"}},
      {{"fetch", "s"}, {"--consumer", "c"}},
      {add, {"--max-age", "24h"}},
      {add, {"--max-bytes", "512MiB"}},
      {add, {"--max-msgs", "100"}},
      {add, {"--fsync", "10ms"}},
      {add, {"--dedup-window", "2m"}},
      {add, {"--dedup-max-ids", "200000"}},
      {add, {"--segment-bytes", "1MiB"}},
  };
  for (const Case& c : cases) {
    std::vector<std::string> once = c.argv;
    once.insert(once.end(), c.flag.begin(), c.flag.end());
    absl::StatusOr<Args> ok = Parse(once);
    EXPECT_TRUE(ok.ok()) << c.flag[0] << ": " << ok.status();
    std::vector<std::string> twice = once;
    twice.insert(twice.end(), c.flag.begin(), c.flag.end());
    EXPECT_THAT(ErrorOf(twice), HasSubstr(c.flag[0] + " given twice"));
  }

  // The repeatable flags add up.
  absl::StatusOr<Args> args =
      Parse({"stream", "add", "s", "--subjects", "a.>", "--subjects", "b.*"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->subjects, (std::vector<std::string>{"a.>", "b.*"}));
  args = Parse({"sub", "t", "--plugin", "p", "--with", "a=1", "--with", "b=2",
                "--plugin", "q", "--with", "c=3"});
  ASSERT_TRUE(args.ok()) << args.status();
  ASSERT_EQ(args->plugins.size(), 2u);
  EXPECT_EQ(args->plugins[0].settings.size(), 2u);
  EXPECT_EQ(args->plugins[1].name, "q");
  args = Parse({"req", "t", "m", "--header", "a=1", "--header", "a=2"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->headers.size(), 2u);
}

TEST(ParseArgsTest, ServerFromEnvironmentUnlessFlagGiven) {
  absl::StatusOr<Args> args = Parse({"stats"}, "tcp://10.0.0.1:7440");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->server, "tcp://10.0.0.1:7440");

  args = Parse({"stats", "--server=tcp://b:1"}, "tcp://10.0.0.1:7440");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->server, "tcp://b:1");
}

TEST(ParseArgsTest, Sub) {
  absl::StatusOr<Args> args = Parse({"sub", "orders.>"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kSub);
  EXPECT_EQ(args->topic, "orders.>");
  EXPECT_EQ(args->count, 0);  // no limit
  EXPECT_EQ(args->timeout, absl::InfiniteDuration());
  EXPECT_EQ(args->queue_group, "");

  args = Parse(
      {"sub", "a.*", "--queue", "workers", "--count", "10", "--timeout=2s"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->queue_group, "workers");
  EXPECT_EQ(args->count, 10);
  EXPECT_EQ(args->timeout, absl::Seconds(2));
}

TEST(ParseArgsTest, ReqDefaultsToFiveSecondTimeout) {
  absl::StatusOr<Args> args = Parse({"req", "time.now", ""});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kReq);
  EXPECT_EQ(args->topic, "time.now");
  EXPECT_EQ(args->message, "");
  EXPECT_EQ(args->timeout, absl::Seconds(5));

  args = Parse({"req", "time.now", "x", "--timeout", "1.5s"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->timeout, absl::Milliseconds(1500));
}

TEST(ParseArgsTest, Reply) {
  absl::StatusOr<Args> args = Parse({"reply", "svc", "--echo"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kReply);
  EXPECT_EQ(args->topic, "svc");
  EXPECT_TRUE(args->echo);
  EXPECT_FALSE(args->response.has_value());
  EXPECT_EQ(args->count, 0);

  args = Parse({"reply", "svc", "--response", "", "--count=2", "--queue=q"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_FALSE(args->echo);
  ASSERT_TRUE(args->response.has_value());
  EXPECT_EQ(*args->response, "");  // an empty response is allowed
  EXPECT_EQ(args->count, 2);
  EXPECT_EQ(args->queue_group, "q");
}

TEST(ParseArgsTest, ReplyNeedsExactlyOneOfEchoAndResponse) {
  EXPECT_THAT(ErrorOf({"reply", "svc"}),
              HasSubstr("give either --echo or --response TEXT"));
  EXPECT_THAT(ErrorOf({"reply", "svc", "--echo", "--response", "x"}),
              HasSubstr("give either --echo or --response TEXT"));
}

TEST(ParseArgsTest, Stats) {
  absl::StatusOr<Args> args = Parse({"stats", "--json"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kStats);
  EXPECT_TRUE(args->json);
}

TEST(ParseArgsTest, UnknownCommand) {
  EXPECT_EQ(ErrorOf({"pbu", "t", "m"}),
            "unknown command 'pbu' (see sift --help)");
  EXPECT_EQ(ErrorOf({"pbu", "--help"}),
            "unknown command 'pbu' (see sift --help)");
  EXPECT_EQ(ErrorOf({"help", "pbu"}),
            "unknown command 'pbu' (see sift --help)");
}

TEST(ParseArgsTest, MissingCommand) {
  EXPECT_EQ(ErrorOf({"--server", "tcp://x:1"}),
            "missing command (see sift --help)");
}

TEST(ParseArgsTest, UnknownFlags) {
  // Named after the command it follows, with that command's usage.
  EXPECT_EQ(ErrorOf({"pub", "t", "m", "--bogus"}),
            "pub: unknown flag --bogus (see sift pub --help)");
  EXPECT_EQ(ErrorOf({"stream", "add", "s", "--max-mesgs=3"}),
            "stream add: unknown flag --max-mesgs (see sift stream add "
            "--help)");
  // Before any command, or after one that is not: the overview.
  EXPECT_EQ(ErrorOf({"--bogus", "pub", "t", "m"}),
            "unknown flag --bogus (see sift --help)");
  EXPECT_EQ(ErrorOf({"pbu", "--bogus"}),
            "unknown flag --bogus (see sift --help)");
  EXPECT_EQ(ErrorOf({"stream", "--bogus"}),
            "unknown flag --bogus (see sift --help)");
  EXPECT_THAT(ErrorOf({"pub", "t", "-x"}), HasSubstr("pub: unknown flag -x"));
  // A flag of another command.
  EXPECT_EQ(ErrorOf({"pub", "t", "m", "--queue", "q"}),
            "pub does not take --queue (see sift pub --help)");
  EXPECT_EQ(ErrorOf({"stats", "--echo"}),
            "stats does not take --echo (see sift stats --help)");
}

TEST(ParseArgsTest, BadFlagValues) {
  EXPECT_EQ(ErrorOf({"sub", "a", "--count"}),
            "sub: flag --count needs a value"
            " (see sift sub --help)");
  EXPECT_EQ(ErrorOf({"--server"}),
            "flag --server needs a value (see sift --help)");
  // A flag where the value should be is not taken as the value: `--queue
  // --ack` joined a group named "--ack" without acks (fresh trial), and
  // `--consumer --ack` made a durable consumer "--ack".
  EXPECT_EQ(ErrorOf({"sub", "qa", "--queue", "--ack"}),
            "sub: flag --queue needs a value (--ack after it is a flag; a "
            "value that starts with -- is written --queue=--ack)"
            " (see sift sub --help)");
  EXPECT_THAT(ErrorOf({"sub", "s.>", "--stream", "s", "--consumer", "--ack"}),
              HasSubstr("sub: flag --consumer needs a value (--ack after it "
                        "is a flag"));
  EXPECT_THAT(ErrorOf({"fetch", "s", "--consumer", "--batch", "1"}),
              HasSubstr("fetch: flag --consumer needs a value"));
  EXPECT_THAT(ErrorOf({"sub", "a", "--max-deliver", "--timeout", "1s"}),
              HasSubstr("sub: flag --max-deliver needs a value"));
  // Written with '=', such a value is taken; a single '-' is not a flag.
  absl::StatusOr<Args> eq = Parse({"sub", "qa", "--queue=--ack"});
  ASSERT_TRUE(eq.ok()) << eq.status();
  EXPECT_EQ(eq->queue_group, "--ack");
  EXPECT_FALSE(eq->ack);
  EXPECT_THAT(ErrorOf({"sub", "a", "--count", "-1"}),
              HasSubstr("invalid count '-1'"));
  EXPECT_THAT(ErrorOf({"sub", "a", "--count", "many"}),
              HasSubstr("invalid count 'many' for --count"));
  EXPECT_THAT(ErrorOf({"sub", "a", "--count=-1"}),
              HasSubstr("invalid count '-1'"));
  EXPECT_EQ(ErrorOf({"pub", "t", "m", "--count", "0"}),
            "pub: invalid count '0' for --count (1 or more)"
            " (see sift pub --help)");
  EXPECT_EQ(ErrorOf({"pub", "f.x", "hello", "--file", "F"}),
            "pub: give MESSAGE or --file, not both ('hello' and --file F) "
            "(see sift pub --help)");
  EXPECT_EQ(ErrorOf({"stream", "add", "s", "--subjects", "a", "--max-bytes",
                     "16777216TiB"}),
            "stream add: invalid size '16777216TiB' for --max-bytes (bytes, "
            "e.g. 1048576 or 512MiB; KiB, MiB, GiB, TiB; 0: no limit; at "
            "most 18446744073709551615 bytes)"
            " (see sift stream add --help)");
  EXPECT_THAT(ErrorOf({"stream", "add", "s", "--subjects", "a", "--max-bytes",
                       "12XB"}),
              Not(HasSubstr("at most")));
  EXPECT_EQ(ErrorOf({"pub", "t", "m", "--count", "99999999999999999999"}),
            "pub: invalid count '99999999999999999999' for --count (1 to "
            "9223372036854775807)"
            " (see sift pub --help)");
  EXPECT_THAT(ErrorOf({"sub", "a", "--timeout", "5"}),
              HasSubstr("invalid duration '5' for --timeout"));
  EXPECT_THAT(ErrorOf({"sub", "a", "--timeout", "0s"}),
              HasSubstr("invalid duration '0s'"));
  EXPECT_THAT(ErrorOf({"stats", "--connect_timeout=soon"}),
              HasSubstr("invalid duration 'soon' for --connect_timeout"));
  EXPECT_THAT(ErrorOf({"stats", "--json=maybe"}),
              HasSubstr("invalid value 'maybe' for --json"));
  EXPECT_THAT(ErrorOf({"stats", "--server="}),
              HasSubstr("--server needs an endpoint"));
  EXPECT_EQ(ErrorOf({"stats", "--version=2"}),
            "stats: flag --version takes no value"
            " (see sift stats --help)");
}

// A number, duration, size or time with whitespace around it is refused
// like any other malformed value, by every flag that takes one (absl's
// SimpleAtoi/SimpleAtod and ParseTime skip it: `fetch --wait ' 300'` was
// taken as 300ms).
// ... and so is a '+' sign (absl takes "+5" as 5).
TEST(ParseArgsTest, ValuesWithSurroundingWhitespaceAreRefused) {
  struct Case {
    std::vector<std::string> argv;  // the command and its other arguments
    std::string flag;
    std::string value;  // a valid value of `flag`
  };
  const std::vector<std::string> add = {"stream", "add", "s", "--subjects",
                                        "a.>"};
  const std::vector<std::string> ack = {"sub", "t", "--ack"};
  const std::vector<std::string> slow = {"sub", "t", "--slow", "drop-oldest"};
  const std::vector<std::string> stream = {"sub", "t", "--stream", "s"};
  const std::vector<Case> cases = {
      {{"pub", "t", "m"}, "--count", "3"},
      {{"pub", "t", "m"}, "--delay", "300"},
      {{"pub", "t", "m"}, "--delay", "2s"},
      {{"stats"}, "--connect_timeout", "2s"},
      {{"sub", "t"}, "--timeout", "2s"},
      {slow, "--max-pending", "1MiB"},
      {slow, "--max-pending", "65536"},
      {slow, "--max-pending-msgs", "10"},
      {ack, "--ack-wait", "300"},
      {ack, "--max-deliver", "3"},
      {ack, "--max-in-flight", "3"},
      {ack, "--max-queued", "3"},
      {ack, "--backoff-initial", "100ms"},
      {ack, "--backoff-max", "2s"},
      {ack, "--backoff-multiplier", "1.5"},
      {ack, "--backoff-jitter", "0.1"},
      {ack, "--nack-delay", "300"},
      {stream, "--from-seq", "7"},
      {stream, "--since", "90s"},
      {stream, "--since", "2026-11-30T12:00:00Z"},
      {{"fetch", "s"}, "--wait", "300"},
      {{"fetch", "s"}, "--wait", "5s"},
      {{"fetch", "s"}, "--batch", "10"},
      {add, "--max-age", "24h"},
      {add, "--max-bytes", "512MiB"},
      {add, "--max-msgs", "100"},
      {add, "--fsync", "10ms"},
      {add, "--fsync", "10"},
      {add, "--dedup-window", "2m"},
      {add, "--dedup-max-ids", "200000"},
      {add, "--segment-bytes", "1MiB"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> good = c.argv;
    good.insert(good.end(), {c.flag, c.value});
    absl::StatusOr<Args> ok = Parse(good);
    EXPECT_TRUE(ok.ok()) << c.flag << " " << c.value << ": " << ok.status();
    for (const std::string& padded : {" " + c.value, c.value + " ",
                                      "\t" + c.value, c.value + "\n",
                                      "+" + c.value}) {
      std::vector<std::string> bad = c.argv;
      bad.insert(bad.end(), {c.flag, padded});
      EXPECT_THAT(ErrorOf(bad),
                  HasSubstr(absl::StrCat("'", absl::CHexEscape(padded),
                                         "' for ", c.flag)))
          << c.flag << " '" << padded << "'";
    }
  }
  // Inside a size, between the number and its unit, too.
  EXPECT_THAT(ErrorOf({"stream", "add", "s", "--subjects", "a.>",
                       "--max-bytes", "512 MiB"}),
              HasSubstr("invalid size '512 MiB' for --max-bytes"));
  // The example, whole.
  EXPECT_EQ(ErrorOf({"fetch", "s", "--wait", " 300"}),
            "fetch: invalid duration ' 300' for --wait (whole milliseconds "
            "from 0ms to 3600000ms, e.g. 500ms, 30s, 2m; a bare number is "
            "milliseconds)"
            " (see sift fetch --help)");
}

// Numbers are plain decimal: no hex (absl's SimpleAtod took
// `--backoff-jitter 0x0.1p0` as 0.0625), no inf or nan; and no '-' where
// the flag takes no negative, also before a zero (-0 passed as 0, and a
// duration -0 or -0s as none).
TEST(ParseArgsTest, NumbersArePlainDecimalWithoutNegativeZero) {
  EXPECT_EQ(ErrorOf({"sub", "j", "--ack", "--backoff-jitter", "0x0.1p0"}),
            "sub: invalid number '0x0.1p0' for --backoff-jitter (a share "
            "from 0 to 1, e.g. 0.2; 0: none)"
            " (see sift sub --help)");
  EXPECT_EQ(ErrorOf({"sub", "a", "--count", "-0"}),
            "sub: invalid count '-0' for --count (0 or more; 0: no limit)"
            " (see sift sub --help)");
  struct Case {
    std::vector<std::string> argv;  // the command and its other arguments
    std::string flag;
    std::vector<std::string> bad;
  };
  const std::vector<std::string> ack = {"sub", "t", "--ack"};
  const std::vector<std::string> add = {"stream", "add", "s", "--subjects",
                                        "a.>"};
  const std::vector<std::string> durations = {"-0", "-0s", "-0ms", "-0h"};
  const std::vector<Case> cases = {
      {ack, "--backoff-jitter",
       {"0x0.1p0", "0x1p-2", "0X.8P0", "-0", "-0.0", "-0e3", "-1e-400", "inf",
        "nan", "1e400"}},
      {ack, "--backoff-multiplier",
       {"0x2", "0x1p1", "inf", "infinity", "nan", "1e400", "-0"}},
      {{"pub", "t", "m"}, "--count", {"-0", "0x10", "1e3"}},
      {{"sub", "t"}, "--count", {"-0", "-00", "0x0"}},
      {{"reply", "t", "--echo"}, "--count", {"-0"}},
      {ack, "--max-deliver", {"-0", "0x3"}},
      {ack, "--max-queued", {"-0"}},
      {add, "--max-msgs", {"-0"}},
      {add, "--max-bytes", {"-0", "0x1000", "-0KiB"}},
      {{"sub", "t", "--slow", "drop-oldest"}, "--max-pending", {"-0"}},
      {ack, "--backoff-initial", durations},
      {ack, "--backoff-max", durations},
      {ack, "--nack-delay", durations},
      {{"fetch", "s"}, "--wait", durations},
      {add, "--max-age", durations},
  };
  for (const Case& c : cases) {
    for (const std::string& bad : c.bad) {
      std::vector<std::string> argv = c.argv;
      argv.insert(argv.end(), {c.flag, bad});
      EXPECT_THAT(ErrorOf(argv),
                  HasSubstr(absl::StrCat("'", bad, "' for ", c.flag)))
          << c.flag << " '" << bad << "'";
    }
  }
  // Decimal fractions and exponents are numbers.
  for (const char* jitter : {"0", "0.25", ".5", "2.5e-1", "1E-1", "1"}) {
    absl::StatusOr<Args> args =
        Parse({"sub", "t", "--ack", "--backoff-jitter", jitter});
    ASSERT_TRUE(args.ok()) << jitter << ": " << args.status();
  }
  absl::StatusOr<Args> args =
      Parse({"sub", "t", "--ack", "--backoff-multiplier", "1e3"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->backoff_multiplier, 1000);
  args = Parse({"sub", "t", "--ack", "--backoff-initial", "0",
                "--nack-delay", "0s"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->backoff_initial, absl::ZeroDuration());
}

// pub --confirm keeps up to --window N confirms awaited (it used to wait
// for each before sending the next).
TEST(ParseArgsTest, PubConfirmWindow) {
  absl::StatusOr<Args> args = Parse({"pub", "t", "m", "--confirm"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->window, 256);
  args = Parse({"pub", "t", "m", "--confirm", "--window", "1"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->window, 1);
  // --retain and --delay publishes are confirmed too.
  args = Parse({"pub", "t", "m", "--retain", "--window=65536"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->window, 65536);
  args = Parse({"pub", "t", "m", "--delay", "1s", "--window=8"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->window, 8);
  EXPECT_EQ(ErrorOf({"pub", "t", "m", "--confirm", "--window", "0"}),
            "pub: invalid window '0' for --window (1 to 65536)"
            " (see sift pub --help)");
  EXPECT_THAT(ErrorOf({"pub", "t", "m", "--confirm", "--window", "65537"}),
              HasSubstr("invalid window '65537'"));
  EXPECT_THAT(ErrorOf({"pub", "t", "m", "--confirm", "--window", " 8"}),
              HasSubstr("invalid window ' 8' for --window (1 to 65536)"));
  EXPECT_THAT(ErrorOf({"pub", "t", "m", "--window", "8"}),
              HasSubstr("pub: --window bounds the confirms awaited at once: "
                        "add --confirm"));
  EXPECT_THAT(ErrorOf({"sub", "t", "--window", "8"}),
              HasSubstr("sub does not take --window"));
}

TEST(ParseArgsTest, WrongNumberOfArguments) {
  EXPECT_EQ(ErrorOf({"pub"}), "pub: missing TOPIC (see sift pub --help)");
  EXPECT_EQ(ErrorOf({"pub", "t"}),
            "pub: missing MESSAGE (see sift pub --help)");
  EXPECT_THAT(ErrorOf({"pub", "t", "hello", "world"}),
              HasSubstr("unexpected argument 'world' (quote a MESSAGE"));
  EXPECT_EQ(ErrorOf({"sub"}), "sub: missing PATTERN (see sift sub --help)");
  EXPECT_EQ(ErrorOf({"stats", "now"}),
            "stats: unexpected argument 'now' (see sift stats --help)");
  EXPECT_THAT(ErrorOf({"help", "pub", "sub"}),
              HasSubstr("help takes at most one command"));
}

TEST(ParseArgsTest, Help) {
  absl::StatusOr<Args> args = Parse({"--help"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kHelp);
  EXPECT_FALSE(args->help_for.has_value());

  args = Parse({"help"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kHelp);
  EXPECT_FALSE(args->help_for.has_value());

  args = Parse({"help", "sub"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kHelp);
  EXPECT_EQ(args->help_for, Command::kSub);

  // --help wins over missing or bad arguments of the command.
  args = Parse({"reply", "-h"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kHelp);
  EXPECT_EQ(args->help_for, Command::kReply);

  args = Parse({"pub", "--help", "--count", "0"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->help_for, Command::kPub);
}

TEST(ParseArgsTest, Version) {
  absl::StatusOr<Args> args = Parse({"--version"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kVersion);

  args = Parse({"sub", "x", "--version", "--help"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kVersion);
}

TEST(UsageTest, OverviewListsEveryCommandAndGlobalFlag) {
  const std::string usage = Usage();
  for (const char* text :
       {"pub TOPIC MESSAGE", "sub PATTERN", "req TOPIC MESSAGE", "reply TOPIC",
        "stats", "help [COMMAND]", "--server ENDPOINT", "$SIFT_SERVER",
        "tcp://127.0.0.1:7440", "--connect_timeout", "--help", "--version",
        "Exit status"}) {
    EXPECT_THAT(usage, HasSubstr(text));
  }
}

TEST(UsageTest, EachCommandDocumentsItsFlags) {
  struct Case {
    Command command;
    std::vector<const char*> texts;
  };
  const std::vector<Case> cases = {
      {Command::kPub,
       {"Usage: sift pub TOPIC (MESSAGE | --file F)", "--count N", "{n}",
        "--confirm", "--window N"}},
      {Command::kSub,
       {"Usage: sift sub PATTERN", "--queue GROUP", "--count N", "--timeout D",
        "[TOPIC] PAYLOAD", "SIGINT", "--slow POLICY", "drop-newest",
        "drop-oldest", "disconnect", "--max-pending BYTES",
        "--max-pending-msgs N"}},
      {Command::kReq, {"Usage: sift req TOPIC MESSAGE", "--timeout D", "5s"}},
      {Command::kReply,
       {"Usage: sift reply TOPIC", "--echo", "--response TEXT", "--count N",
        "--queue GROUP"}},
      {Command::kStats, {"Usage: sift stats", "--json"}},
  };
  for (const Case& c : cases) {
    const std::string usage = CommandUsage(c.command);
    for (const char* text : c.texts) {
      EXPECT_THAT(usage, HasSubstr(text)) << CommandName(c.command);
    }
    EXPECT_THAT(usage, HasSubstr("--server")) << CommandName(c.command);
    EXPECT_THAT(usage, Not(HasSubstr("Commands:")));
  }
}

TEST(ParseArgsTest, SubSlowConsumerPolicy) {
  absl::StatusOr<Args> args = Parse({"sub", "prices.>", "--slow",
                                     "drop-oldest", "--max-pending", "1MiB",
                                     "--max-pending-msgs=100"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->slow, SlowFlag::kDropOldest);
  EXPECT_EQ(args->max_pending, uint64_t{1} << 20);
  EXPECT_EQ(args->max_pending_msgs, 100u);

  args = Parse({"sub", "p", "--slow=disconnect", "--max-pending=65536"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->slow, SlowFlag::kDisconnect);
  EXPECT_EQ(args->max_pending, 65536u);
  EXPECT_EQ(args->max_pending_msgs, 0u);

  args = Parse({"sub", "p", "--slow", "drop-newest"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->slow, SlowFlag::kDropNewest);
  EXPECT_EQ(args->max_pending, 0u);

  args = Parse({"sub", "p"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->slow, SlowFlag::kUnset);
}

TEST(ParseArgsTest, SubSlowConsumerErrors) {
  EXPECT_THAT(ErrorOf({"sub", "p", "--slow", "drop-all"}),
              HasSubstr("invalid policy 'drop-all' for --slow (drop-newest, "
                        "drop-oldest or disconnect)"));
  EXPECT_THAT(ErrorOf({"sub", "p", "--slow", ""}),
              HasSubstr("invalid policy"));
  EXPECT_THAT(ErrorOf({"sub", "p", "--slow", "drop-oldest", "--max-pending",
                       "lots"}),
              HasSubstr("invalid size 'lots' for --max-pending"));
  EXPECT_THAT(ErrorOf({"sub", "p", "--slow", "drop-oldest", "--max-pending",
                       "-1"}),
              HasSubstr("invalid size"));
  EXPECT_THAT(ErrorOf({"sub", "p", "--slow", "drop-oldest",
                       "--max-pending-msgs", "0"}),
              HasSubstr("(1 to 4294967295)"));
  EXPECT_THAT(ErrorOf({"sub", "p", "--slow", "drop-oldest",
                       "--max-pending-msgs", "4294967296"}),
              HasSubstr("(1 to 4294967295)"));
  EXPECT_THAT(ErrorOf({"sub", "p", "--max-pending", "1MiB"}),
              HasSubstr("give --slow"));
  EXPECT_THAT(ErrorOf({"sub", "p", "--slow", "drop-newest",
                       "--max-pending-msgs", "5"}),
              HasSubstr("--max-pending-msgs bounds the messages --slow "
                        "drop-oldest keeps"));
  EXPECT_THAT(ErrorOf({"sub", "p", "--slow", "disconnect", "--ack"}),
              HasSubstr("--slow is for live subscriptions without --ack"));
  EXPECT_THAT(ErrorOf({"sub", "p", "--slow", "disconnect", "--stream", "s"}),
              HasSubstr("--slow is for live subscriptions"));
  EXPECT_THAT(ErrorOf({"reply", "p", "--echo", "--slow", "disconnect"}),
              HasSubstr("--slow"));
}

// --ack also takes the ack mode by name, as the protocol names it: the
// issue's `sift sub --ack explicit` said "unexpected argument 'explicit'".
TEST(AckArgsTest, TakesTheModeByName) {
  for (const std::vector<std::string>& argv :
       std::vector<std::vector<std::string>>{
           {"sub", "jobs.>", "--ack", "explicit"},
           {"sub", "--ack", "explicit", "jobs.>"},
           {"sub", "jobs.>", "--ack=explicit"},
           {"sub", "--ack", "jobs.>"},  // a bare --ack before the PATTERN
           {"sub", "jobs.>", "--ack", "explicit", "--max-deliver", "3"}}) {
    absl::StatusOr<Args> args = Parse(argv);
    ASSERT_TRUE(args.ok()) << args.status();
    EXPECT_TRUE(args->ack);
    EXPECT_EQ(args->topic, "jobs.>");
  }
  for (const std::vector<std::string>& argv :
       std::vector<std::vector<std::string>>{{"sub", "jobs.>", "--ack", "none"},
                                             {"sub", "jobs.>", "--ack=none"}}) {
    absl::StatusOr<Args> args = Parse(argv);
    ASSERT_TRUE(args.ok()) << args.status();
    EXPECT_FALSE(args->ack);
  }
  absl::StatusOr<Args> fetch =
      Parse({"fetch", "orders", "--consumer", "c", "--ack", "explicit"});
  ASSERT_TRUE(fetch.ok()) << fetch.status();
  EXPECT_TRUE(fetch->ack);
  EXPECT_EQ(ErrorOf({"sub", "jobs.>", "--ack", "none", "--max-deliver", "3"}),
            "sub: --max-deliver is for explicit acks: give --ack "
            "(at-least-once delivery; without it, or with --ack none, "
            "delivery is at-most-once) (see sift sub --help)");
  EXPECT_EQ(ErrorOf({"sub", "jobs.>", "--ack=maybe"}),
            "sub: invalid value 'maybe' for --ack (the ack mode: explicit or "
            "none; --ack alone is explicit)"
            " (see sift sub --help)");
  // Another word after --ack is the command's next argument, as before.
  EXPECT_EQ(ErrorOf({"sub", "jobs.>", "--ack", "late"}),
            "sub: unexpected argument 'late' (see sift sub --help)");
}

TEST(AckArgsTest, DefaultsLeaveThePolicyToTheBroker) {
  absl::StatusOr<Args> args = Parse({"sub", "jobs.>", "--ack"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_TRUE(args->ack);
  EXPECT_FALSE(args->ack_wait.has_value());
  EXPECT_FALSE(args->max_deliver.has_value());
  EXPECT_FALSE(args->max_in_flight.has_value());
  EXPECT_FALSE(args->max_queued.has_value());
  EXPECT_FALSE(args->backoff_initial.has_value());
  EXPECT_FALSE(args->backoff_multiplier.has_value());
  EXPECT_FALSE(args->backoff_max.has_value());
  EXPECT_FALSE(args->backoff_jitter.has_value());
  EXPECT_FALSE(args->nack);
  EXPECT_EQ(args->nack_delay, absl::ZeroDuration());
}

TEST(AckArgsTest, EverySubscribeOptionHasItsFlag) {
  absl::StatusOr<Args> args = Parse(
      {"sub", "jobs.>", "--queue", "workers", "--ack", "--ack-wait", "1500ms",
       "--max-deliver", "3", "--max-in-flight=10", "--max-queued", "0",
       "--backoff-initial", "250", "--backoff-multiplier", "1.5",
       "--backoff_max", "2m", "--backoff-jitter", "0"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->ack_wait, absl::Milliseconds(1500));
  EXPECT_EQ(args->max_deliver, 3u);
  EXPECT_EQ(args->max_in_flight, 10u);
  EXPECT_EQ(args->max_queued, 0u);
  EXPECT_EQ(args->backoff_initial, absl::Milliseconds(250));  // bare: ms
  EXPECT_EQ(args->backoff_multiplier, 1.5);
  EXPECT_EQ(args->backoff_max, absl::Minutes(2));
  EXPECT_EQ(args->backoff_jitter, 0.0);
  EXPECT_FALSE(args->nack);

  // 0 means no limit for --max-deliver; the largest values fit the wire.
  args = Parse({"sub", "j", "--ack", "--max-deliver", "0", "--ack-wait",
                "4294967295", "--max-in-flight", "4294967295"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->max_deliver, 0u);
  EXPECT_EQ(args->ack_wait, absl::Milliseconds(4294967295));
  EXPECT_EQ(args->max_in_flight, 4294967295u);
}

TEST(AckArgsTest, NackAndNackDelay) {
  absl::StatusOr<Args> args = Parse({"sub", "j", "--ack", "--nack"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_TRUE(args->nack);
  EXPECT_EQ(args->nack_delay, absl::ZeroDuration());

  args = Parse({"sub", "j", "--nack-delay", "2s", "--ack"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_TRUE(args->nack);  // --nack-delay is --nack with a delay
  EXPECT_EQ(args->nack_delay, absl::Seconds(2));

  // The multiplier's bound is in its message.
  EXPECT_THAT(ErrorOf({"sub", "j", "--ack", "--backoff-multiplier", "1e10"}),
              HasSubstr("a number from 1 to 1e9"));

  // One or the other, as the usage line says.
  EXPECT_THAT(ErrorOf({"sub", "j", "--ack", "--nack", "--nack-delay", "1s"}),
              HasSubstr("sub: give --nack or --nack-delay D, not both"));

  // --nack=false is no NACK, and needs no --ack.
  args = Parse({"sub", "j", "--nack=false"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_FALSE(args->nack);

  // fetch takes them too (a durable consumer's ack policy), not
  // --max-queued (no queue group).
  args = Parse({"fetch", "orders", "--consumer", "c", "--ack", "--nack-delay",
                "100", "--ack-wait", "5s", "--max-deliver", "2"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_TRUE(args->nack);
  EXPECT_EQ(args->nack_delay, absl::Milliseconds(100));
  EXPECT_EQ(args->ack_wait, absl::Seconds(5));
  EXPECT_EQ(args->max_deliver, 2u);
  EXPECT_THAT(ErrorOf({"fetch", "o", "--consumer", "c", "--ack",
                       "--max-queued", "5"}),
              HasSubstr("fetch does not take --max-queued"));
}

TEST(AckArgsTest, BadValuesAreUsageErrors) {
  EXPECT_EQ(ErrorOf({"sub", "j", "--ack", "--ack-wait", "0"}),
            "sub: invalid duration '0' for --ack-wait (whole milliseconds from "
            "1ms to 4294967295ms, e.g. 500ms, 30s, 2m; a bare number is "
            "milliseconds)"
            " (see sift sub --help)");
  for (const char* bad : {"-5", "1.5ms", "100us", "soon", "4294967296", "inf",
                          "50d", ""}) {
    EXPECT_THAT(ErrorOf({"sub", "j", "--ack", "--ack-wait", bad}),
                HasSubstr("for --ack-wait (whole milliseconds"))
        << bad;
  }
  EXPECT_EQ(ErrorOf({"sub", "j", "--ack", "--max-deliver", "-1"}),
            "sub: invalid count '-1' for --max-deliver (0 to 4294967295; 0: "
            "no limit)"
            " (see sift sub --help)");
  EXPECT_EQ(ErrorOf({"sub", "j", "--ack", "--max-in-flight", "0"}),
            "sub: invalid count '0' for --max-in-flight (1 to 4294967295)"
            " (see sift sub --help)");
  EXPECT_THAT(ErrorOf({"sub", "j", "--ack", "--max-queued", "4294967296"}),
              HasSubstr("invalid count '4294967296' for --max-queued"));
  EXPECT_THAT(ErrorOf({"sub", "j", "--ack", "--max-deliver", "many"}),
              HasSubstr("invalid count 'many'"));
  EXPECT_EQ(ErrorOf({"sub", "j", "--ack", "--backoff-multiplier", "0.5"}),
            "sub: invalid number '0.5' for --backoff-multiplier (a number "
            "from 1 to 1e9, e.g. 2 or 1.5)"
            " (see sift sub --help)");
  EXPECT_THAT(ErrorOf({"sub", "j", "--ack", "--backoff-multiplier", "nan"}),
              HasSubstr("invalid number 'nan'"));
  EXPECT_EQ(ErrorOf({"sub", "j", "--ack", "--backoff-jitter", "1.5"}),
            "sub: invalid number '1.5' for --backoff-jitter (a share from 0 "
            "to 1, e.g. 0.2; 0: none)"
            " (see sift sub --help)");
  EXPECT_THAT(ErrorOf({"sub", "j", "--ack", "--nack-delay", "-1s"}),
              HasSubstr("invalid duration '-1s' for --nack-delay"));
  EXPECT_THAT(ErrorOf({"sub", "j", "--ack", "--nack=maybe"}),
              HasSubstr("invalid value 'maybe' for --nack"));
}

TEST(AckArgsTest, FlagsThatDoNotFitAreUsageErrors) {
  // Every policy flag, and --nack, needs --ack; the first one is named.
  EXPECT_EQ(ErrorOf({"sub", "j", "--max-deliver", "3", "--ack-wait", "1s"}),
            "sub: --max-deliver is for explicit acks: give --ack "
            "(at-least-once delivery; without it, or with --ack none, "
            "delivery is at-most-once) (see sift sub --help)");
  for (std::vector<std::string> flag :
       {std::vector<std::string>{"--ack-wait", "1s"},
        {"--max-in-flight", "1"},
        {"--max-queued", "1"},
        {"--backoff-initial", "1s"},
        {"--backoff-multiplier", "2"},
        {"--backoff-max", "1s"},
        {"--backoff-jitter", "0"},
        {"--nack"},
        {"--nack-delay", "1s"}}) {
    std::vector<std::string> argv = {"sub", "j"};
    argv.insert(argv.end(), flag.begin(), flag.end());
    EXPECT_THAT(ErrorOf(argv), HasSubstr(flag[0] + " is for explicit acks: "
                                         "give --ack"));
  }
  EXPECT_THAT(ErrorOf({"fetch", "o", "--consumer", "c", "--nack"}),
              HasSubstr("--nack is for explicit acks: give --ack"));
  // The backoff's maximum may not be below its start, the broker's defaults
  // (1s, 60s) standing in for the one left out.
  EXPECT_EQ(ErrorOf({"sub", "j", "--ack", "--backoff-initial", "2s",
                     "--backoff-max", "1s"}),
            "sub: --backoff-max (1s) is below --backoff-initial (2s) (see "
            "sift sub --help)");
  EXPECT_EQ(ErrorOf({"sub", "j", "--ack", "--backoff-initial", "90s"}),
            "sub: --backoff-max (the broker's default 1m) is below "
            "--backoff-initial (1m30s) (see sift sub --help)");
  EXPECT_EQ(ErrorOf({"sub", "j", "--ack", "--backoff-max", "500ms"}),
            "sub: --backoff-max (500ms) is below --backoff-initial (the "
            "broker's default 1s) (see sift sub --help)");
  EXPECT_TRUE(Parse({"sub", "j", "--ack", "--backoff-initial", "90s",
                     "--backoff-max", "90s"})
                  .ok());
  // A stream keeps its records: no queue group backlog to bound.
  EXPECT_THAT(ErrorOf({"sub", "j", "--stream", "s", "--ack", "--max-queued",
                       "5"}),
              HasSubstr("--max-queued bounds the messages a live queue group "
                        "keeps waiting"));
  // reply answers requests; it does not take acks.
  EXPECT_THAT(ErrorOf({"reply", "t", "--echo", "--nack"}),
              HasSubstr("reply does not take --nack"));
}

TEST(AckArgsTest, HelpDescribesEveryAckFlag) {
  const std::string sub = CommandUsage(Command::kSub);
  const std::string fetch = CommandUsage(Command::kFetch);
  for (const char* flag :
       {"--ack-wait D", "--max-deliver N", "--max-in-flight N",
        "--backoff-initial D", "--backoff-multiplier X", "--backoff-max D",
        "--backoff-jitter X", "--nack", "--nack-delay D"}) {
    EXPECT_THAT(sub, HasSubstr(flag));
    EXPECT_THAT(fetch, HasSubstr(flag));
  }
  EXPECT_THAT(sub, HasSubstr("--max-queued N"));
  EXPECT_THAT(fetch, Not(HasSubstr("--max-queued")));
  EXPECT_THAT(sub, HasSubstr("$sift.deadletter.<topic>"));
}

TEST(UsageTest, FitsIn80Columns) {
  std::vector<std::string> texts = {Usage()};
  for (Command c : {Command::kPub, Command::kSub, Command::kReq,
                    Command::kReply, Command::kStats}) {
    texts.push_back(CommandUsage(c));
  }
  for (const std::string& text : texts) {
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      EXPECT_LE(end - start, 80u) << text.substr(start, end - start);
      start = end + 1;
    }
  }
}

}  // namespace
}  // namespace sift::cli

namespace sift::cli {
namespace {

TEST(ParseArgsTest, HeadersAreRepeatableAndOrdered) {
  absl::StatusOr<Args> args =
      ParseArgs({"pub", "t", "m", "--header", "region=eu", "--header=note=a=b",
                 "--header", "empty="},
                "");
  ASSERT_TRUE(args.ok()) << args.status();
  ASSERT_EQ(args->headers.size(), 3u);
  EXPECT_EQ(args->headers[0], (std::pair<std::string, std::string>{"region", "eu"}));
  EXPECT_EQ(args->headers[1], (std::pair<std::string, std::string>{"note", "a=b"}));
  EXPECT_EQ(args->headers[2], (std::pair<std::string, std::string>{"empty", ""}));
  args = ParseArgs({"sub", "t.>", "--headers"}, "");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_TRUE(args->show_headers);
  args = ParseArgs({"req", "t", "m", "--header", "a=1", "--headers"}, "");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->headers.size(), 1u);
}

TEST(ParseArgsTest, HeaderErrors) {
  for (const char* bad : {"noequals", "=value"}) {
    absl::StatusOr<Args> args = ParseArgs({"pub", "t", "m", "--header", bad}, "");
    ASSERT_FALSE(args.ok()) << bad;
    EXPECT_NE(args.status().message().find("use KEY=VALUE"), std::string::npos)
        << args.status();
  }
  // Only pub and req publish headers; only sub and req print them.
  EXPECT_FALSE(ParseArgs({"sub", "t", "--header", "a=1"}, "").ok());
  EXPECT_FALSE(ParseArgs({"pub", "t", "m", "--headers"}, "").ok());
}

}  // namespace
}  // namespace sift::cli

namespace sift::cli {
namespace {

TEST(ParseArgsTest, PubFromAFile) {
  absl::StatusOr<Args> args = ParseArgs({"pub", "t", "--file", "x.bin"}, "");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->payload_file, "x.bin");
  EXPECT_EQ(args->topic, "t");
  // With --file there is no MESSAGE.
  EXPECT_FALSE(ParseArgs({"pub", "t", "m", "--file", "x.bin"}, "").ok());
  args = ParseArgs({"pub", "t", "--retain", "m"}, "");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_TRUE(args->retain);
  args = ParseArgs({"pub", "t", "--delay", "2s", "m"}, "");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->delay, absl::Seconds(2));
  // The broker refuses the two together: a usage error, not a silent drop.
  EXPECT_FALSE(ParseArgs({"pub", "t", "--retain", "--delay", "2s", "m"}, "")
                   .ok());
}

}  // namespace
}  // namespace sift::cli

namespace sift::cli {
namespace {

TEST(StreamArgsTest, StreamAddWithEveryFlag) {
  absl::StatusOr<Args> args =
      Parse({"stream", "add", "orders", "--subjects", "orders.>, billing.*",
             "--subjects=audit.>", "--max-age", "24h", "--max-bytes",
             "512MiB", "--max-msgs", "1000", "--fsync", "1s",
             "--dedup-window", "5m", "--segment-bytes", "1MiB",
             "--dedup-max-ids", "200000"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kStreamAdd);
  EXPECT_EQ(args->stream, "orders");
  EXPECT_EQ(args->subjects,
            (std::vector<std::string>{"orders.>", "billing.*", "audit.>"}));
  EXPECT_EQ(args->max_age, absl::Hours(24));
  EXPECT_EQ(args->max_bytes, uint64_t{512} << 20);
  EXPECT_EQ(args->max_msgs, 1000u);
  EXPECT_EQ(args->fsync, "1000ms");
  EXPECT_EQ(args->dedup_window, absl::Minutes(5));
  EXPECT_EQ(args->segment_bytes, uint64_t{1} << 20);
  EXPECT_EQ(args->dedup_max_ids, 200000u);
  // Its bounds are the broker's, and 0 is not "unlimited".
  for (const char* bad : {"0", "100000001", "1e5", "100k"}) {
    absl::StatusOr<Args> refused =
        Parse({"stream", "add", "s", "--subjects", "a", "--dedup-max-ids",
               bad});
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_THAT(std::string(refused.status().message()),
                HasSubstr("1 to 100000000"));
  }
  ASSERT_TRUE(Parse({"stream", "add", "s", "--subjects", "a",
                     "--dedup-max-ids", "100000000"})
                  .ok());

  args = Parse({"stream", "add", "s", "--subjects", "a", "--fsync", "never",
                "--max-bytes", "4096"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->fsync, "never");
  EXPECT_EQ(args->max_bytes, 4096u);
  EXPECT_EQ(args->max_age, absl::ZeroDuration());
}

TEST(StreamArgsTest, StreamActions) {
  absl::StatusOr<Args> args = Parse({"stream", "info", "orders"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kStreamInfo);
  EXPECT_EQ(args->stream, "orders");
  args = Parse({"--server", "tcp://h:1", "stream", "ls"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kStreamLs);
  args = Parse({"stream", "rm", "orders"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kStreamRm);
  args = Parse({"stream", "rm-consumer", "orders", "billing"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kStreamRmConsumer);
  EXPECT_EQ(args->stream, "orders");
  EXPECT_EQ(args->consumer, "billing");
}

TEST(StreamArgsTest, StreamErrors) {
  EXPECT_THAT(ErrorOf({"stream"}), HasSubstr("stream: missing ACTION"));
  EXPECT_THAT(ErrorOf({"stream", "make", "x"}),
              HasSubstr("stream: unknown action 'make'"));
  EXPECT_EQ(ErrorOf({"stream", "info"}),
            "stream info: missing NAME (see sift stream info --help)");
  EXPECT_EQ(ErrorOf({"stream", "ls", "x"}),
            "stream ls: unexpected argument 'x' (see sift stream ls --help)");
  EXPECT_EQ(ErrorOf({"stream", "rm-consumer", "s"}),
            "stream rm-consumer: missing NAME (see sift stream rm-consumer "
            "--help)");
  EXPECT_THAT(ErrorOf({"stream", "add", "s"}),
              HasSubstr("give the topics to store with --subjects"));
  EXPECT_THAT(ErrorOf({"stream", "add", "s", "--subjects", "a,,b"}),
              HasSubstr("empty subject"));
  EXPECT_THAT(ErrorOf({"stream", "add", "s", "--subjects", "a", "--fsync",
                       "sometimes"}),
              HasSubstr("invalid fsync policy 'sometimes'"));
  EXPECT_THAT(ErrorOf({"stream", "add", "s", "--subjects", "a", "--fsync",
                       "100us"}),
              HasSubstr("from 1ms to 60s"));
  // Sent in whole ms, up to the broker's 60 s: a fraction is refused, not
  // cut (1.5ms was sent as 1ms), and so is more than 60 s (refused by the
  // broker only, before).
  EXPECT_THAT(ErrorOf({"stream", "add", "s", "--subjects", "a", "--fsync",
                       "1.5ms"}),
              HasSubstr("invalid fsync policy '1.5ms'"));
  EXPECT_THAT(ErrorOf({"stream", "add", "s", "--subjects", "a", "--fsync",
                       "61s"}),
              HasSubstr("invalid fsync policy '61s'"));
  EXPECT_THAT(ErrorOf({"stream", "add", "s", "--subjects", "a", "--max-age",
                       "1.5ms"}),
              HasSubstr("whole milliseconds from 0ms to "
                        "9007199254740992ms (about 285,000 years)"));
  // A bare number is milliseconds, for --fsync too; --max-age 0 is
  // unlimited, as in the config file.
  absl::StatusOr<Args> bare = Parse(
      {"stream", "add", "s", "--subjects", "a", "--fsync", "10", "--max-age",
       "0"});
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ(bare->fsync, "10ms");
  EXPECT_EQ(bare->max_age, absl::ZeroDuration());
  EXPECT_THAT(ErrorOf({"stream", "add", "s", "--subjects", "a",
                       "--dedup-window", "0.5s1us"}),
              HasSubstr("invalid duration '0.5s1us'"));
  EXPECT_THAT(ErrorOf({"pub", "t", "m", "--delay", "2.0005s"}),
              HasSubstr("invalid duration '2.0005s' for --delay"));
  EXPECT_THAT(ErrorOf({"stream", "add", "s", "--subjects", "a",
                       "--max-bytes", "1GB"}),
              HasSubstr("invalid size '1GB'"));
  EXPECT_THAT(ErrorOf({"stream", "add", "s", "--subjects", "a",
                       "--max-bytes", "-1"}),
              HasSubstr("invalid size"));
  EXPECT_THAT(ErrorOf({"stream", "info", "s", "--subjects", "a"}),
              HasSubstr("stream info does not take --subjects"));
  EXPECT_THAT(ErrorOf({"pub", "t", "m", "--subjects", "a"}),
              HasSubstr("pub does not take --subjects"));
}

TEST(StreamArgsTest, Fetch) {
  absl::StatusOr<Args> args = Parse({"fetch", "orders"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kFetch);
  EXPECT_EQ(args->stream, "orders");
  EXPECT_EQ(args->batch, 1);
  EXPECT_EQ(args->wait, absl::ZeroDuration());
  EXPECT_EQ(args->from, StreamFrom::kDefault);
  EXPECT_FALSE(args->ack);

  args = Parse({"fetch", "orders", "--consumer", "billing", "--batch", "50",
                "--wait", "2s", "--from-seq", "7", "--filter-topic",
                "orders.eu.*", "--ack", "--headers"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->consumer, "billing");
  EXPECT_EQ(args->batch, 50);
  EXPECT_EQ(args->wait, absl::Seconds(2));
  EXPECT_EQ(args->from, StreamFrom::kFromSeq);
  EXPECT_EQ(args->from_seq, 7u);
  EXPECT_EQ(args->filter_topic, "orders.eu.*");
  EXPECT_TRUE(args->ack);
  EXPECT_TRUE(args->show_headers);

  args = Parse({"fetch", "s", "--wait", "0", "--all"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->from, StreamFrom::kAll);
  EXPECT_EQ(args->wait, absl::ZeroDuration());
  args = Parse({"fetch", "s", "--wait", "250"});  // a bare number is ms
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->wait, absl::Milliseconds(250));
  args = Parse({"fetch", "s", "--new"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->from, StreamFrom::kNew);

  args = Parse({"fetch", "s", "--since", "2026-11-30T12:00:00Z"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->from, StreamFrom::kSince);
  ASSERT_TRUE(args->since_time.has_value());
  EXPECT_EQ(absl::ToUnixSeconds(*args->since_time), 1796040000);
  args = Parse({"fetch", "s", "--since", "90m"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_FALSE(args->since_time.has_value());
  EXPECT_EQ(args->since_ago, absl::Minutes(90));
}

TEST(StreamArgsTest, FetchErrors) {
  EXPECT_EQ(ErrorOf({"fetch"}), "fetch: missing STREAM (see sift fetch --help)");
  EXPECT_THAT(ErrorOf({"fetch", "s", "--batch", "0"}),
              HasSubstr("invalid batch '0' for --batch (1 to 10000)"));
  EXPECT_THAT(ErrorOf({"fetch", "s", "--batch", "10001"}),
              HasSubstr("(1 to 10000)"));
  EXPECT_THAT(ErrorOf({"fetch", "s", "--wait", "-1s"}),
              HasSubstr("invalid duration '-1s' for --wait"));
  // Sent in whole ms: a fraction is refused, not cut to 0 (no wait).
  EXPECT_THAT(ErrorOf({"fetch", "s", "--wait", "0.5ms"}),
              HasSubstr("invalid duration '0.5ms' for --wait (whole "
                        "milliseconds"));
  EXPECT_THAT(ErrorOf({"fetch", "s", "--wait", "inf"}),
              HasSubstr("invalid duration 'inf' for --wait"));
  EXPECT_THAT(ErrorOf({"fetch", "s", "--wait", "61m"}),
              HasSubstr("from 0ms to 3600000ms"));
  EXPECT_THAT(ErrorOf({"fetch", "s", "--all", "--from-seq", "3"}),
              HasSubstr("at most one of --all, --new, --from-seq and --since"));
  EXPECT_EQ(ErrorOf({"fetch", "s", "--from-seq", "0"}),
            "fetch: invalid sequence number '0' for --from-seq (1 or more)"
            " (see sift fetch --help)");
  EXPECT_THAT(ErrorOf({"fetch", "s", "--since", "yesterday"}),
              HasSubstr("invalid time 'yesterday'"));
  EXPECT_THAT(ErrorOf({"fetch", "s", "--ack"}),
              HasSubstr("--ack needs --consumer NAME"));
  EXPECT_THAT(ErrorOf({"fetch", "s", "--stream", "x"}),
              HasSubstr("fetch does not take --stream"));
}

TEST(StreamArgsTest, SubFromAStream) {
  absl::StatusOr<Args> args =
      Parse({"sub", "orders.>", "--stream", "orders", "--consumer", "audit",
             "--all", "--ack", "--count", "3"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kSub);
  EXPECT_EQ(args->topic, "orders.>");
  EXPECT_EQ(args->stream, "orders");
  EXPECT_EQ(args->consumer, "audit");
  EXPECT_EQ(args->from, StreamFrom::kAll);
  EXPECT_TRUE(args->ack);
  EXPECT_EQ(args->count, 3);

  EXPECT_THAT(ErrorOf({"sub", "x", "--all"}),
              HasSubstr("read a stream: give --stream NAME"));
  EXPECT_THAT(ErrorOf({"sub", "x", "--consumer", "c"}),
              HasSubstr("give --stream NAME"));
  EXPECT_THAT(ErrorOf({"sub", "x", "--stream", "s", "--batch", "3"}),
              HasSubstr("sub does not take --batch"));
}

TEST(StreamArgsTest, PubMsgId) {
  absl::StatusOr<Args> args =
      Parse({"pub", "orders.x", "m", "--msg-id", "order-{n}", "--confirm"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->msg_id, "order-{n}");
  EXPECT_THAT(ErrorOf({"pub", "t", "m", "--msg-id="}),
              HasSubstr("needs a message id"));
  // --header Msg-Id=ID (the spelling, any case) or
  // sift-msg-id=ID is the message id too, not a header the broker ignores.
  // It stays where it was given among the headers, under the key the
  // broker reads (it used to be moved after them all).
  using Headers = std::vector<std::pair<std::string, std::string>>;
  for (const char* key : {"Msg-Id", "msg-id", "SIFT-MSG-ID", "sift-msg-id"}) {
    args = Parse({"pub", "t", "m", "--header", absl::StrCat(key, "=o-7"),
                  "--header", "region=eu"});
    ASSERT_TRUE(args.ok()) << key << ": " << args.status();
    EXPECT_EQ(args->msg_id, "o-7") << key;
    EXPECT_EQ(args->headers, (Headers{{"sift-msg-id", "o-7"},
                                      {"region", "eu"}}))
        << key;
  }
  args = Parse({"pub", "t", "m", "--header", "a=1", "--msg-id", "x-{n}",
                "--header", "b=2"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->msg_id, "x-{n}");
  EXPECT_EQ(args->headers,
            (Headers{{"a", "1"}, {"sift-msg-id", "x-{n}"}, {"b", "2"}}));
  // The same id twice is one header, where it came first.
  args = Parse({"pub", "t", "m", "--msg-id", "a", "--header", "z=1",
                "--header", "Msg-Id=a"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->headers, (Headers{{"sift-msg-id", "a"}, {"z", "1"}}));
  // req sends it too (it was dropped), under the broker's key.
  args = Parse({"req", "t", "m", "--header", "MSG-ID=r", "--header", "b=2"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->headers, (Headers{{"sift-msg-id", "r"}, {"b", "2"}}));
  EXPECT_THAT(ErrorOf({"pub", "t", "m", "--msg-id", "a", "--header",
                       "sift-msg-id=b"}),
              HasSubstr("two message ids: 'a' and 'b'"));
  EXPECT_THAT(ErrorOf({"pub", "t", "m", "--header", "Msg-Id=b", "--msg-id",
                       "a"}),
              HasSubstr("two message ids: 'b' and 'a'"));
}

TEST(StreamArgsTest, Help) {
  absl::StatusOr<Args> args = Parse({"stream", "--help"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->command, Command::kHelp);
  EXPECT_EQ(args->help_for, Command::kStream);
  args = Parse({"stream", "add", "-h"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->help_for, Command::kStreamAdd);
  args = Parse({"help", "stream"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->help_for, Command::kStream);
  args = Parse({"help", "stream", "rm-consumer"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->help_for, Command::kStreamRmConsumer);
  args = Parse({"help", "fetch"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->help_for, Command::kFetch);
  EXPECT_THAT(ErrorOf({"help", "stream", "ls", "x"}),
              HasSubstr("help takes at most one command"));
}

TEST(StreamUsageTest, EveryStreamCommandDocumentsItsFlagsIn80Columns) {
  struct Case {
    Command command;
    std::vector<const char*> texts;
  };
  const std::vector<Case> cases = {
      {Command::kFetch,
       {"Usage: sift fetch STREAM", "--consumer NAME", "--batch N", "--wait D",
        "--all", "--new", "--from-seq N", "--since TIME", "--filter-topic",
        "--ack", "[TOPIC #SEQ] PAYLOAD"}},
      {Command::kStream, {"add NAME", "info NAME", "ls", "rm NAME",
                          "rm-consumer STREAM NAME", "--data_dir"}},
      {Command::kStreamAdd,
       {"Usage: sift stream add NAME --subjects", "--max-age D",
        "--max-bytes N", "--max-msgs N", "--fsync", "--dedup-window D",
        "--dedup-max-ids N", "--segment-bytes N"}},
      {Command::kStreamInfo, {"Usage: sift stream info NAME"}},
      {Command::kStreamLs, {"Usage: sift stream ls"}},
      {Command::kStreamRm, {"Usage: sift stream rm NAME"}},
      {Command::kStreamRmConsumer,
       {"Usage: sift stream rm-consumer STREAM NAME"}},
      {Command::kSub, {"--stream NAME", "--consumer NAME", "--from-seq N"}},
      {Command::kPub, {"--msg-id ID", "sift-msg-id"}},
  };
  for (const Case& c : cases) {
    const std::string usage = CommandUsage(c.command);
    for (const char* text : c.texts) {
      EXPECT_THAT(usage, HasSubstr(text)) << CommandName(c.command);
    }
    EXPECT_THAT(usage, HasSubstr("--server")) << CommandName(c.command);
    size_t start = 0;
    while (start < usage.size()) {
      size_t end = usage.find('\n', start);
      if (end == std::string::npos) end = usage.size();
      EXPECT_LE(end - start, 80u) << usage.substr(start, end - start);
      start = end + 1;
    }
  }
  for (const char* text : {"fetch STREAM", "stream add NAME", "stream ls",
                           "stream rm-consumer STREAM NAME"}) {
    EXPECT_THAT(Usage(), HasSubstr(text));
  }
}

// Each count flag's error gives its own range: "(a whole number, 0 or
// more)" was said for all, also where 0 is refused. A refused value is
// shown escaped: '3\r' printed as '3'.
TEST(ParseArgsTest, CountErrorsGiveTheFlagsRange) {
  EXPECT_EQ(ErrorOf({"pub", "t", "m", "--confirm", "--window", "-1"}),
            "pub: invalid window '-1' for --window (1 to 65536)"
            " (see sift pub --help)");
  EXPECT_EQ(ErrorOf({"pub", "t", "m", "--confirm", "--window",
                     "99999999999999999999"}),
            "pub: invalid window '99999999999999999999' for --window (1 to "
            "65536)"
            " (see sift pub --help)");
  EXPECT_EQ(ErrorOf({"fetch", "s", "--batch", " 2"}),
            "fetch: invalid batch ' 2' for --batch (1 to 10000)"
            " (see sift fetch --help)");
  EXPECT_EQ(ErrorOf({"pub", "t", "m", "--count", ""}),
            "pub: invalid count '' for --count (1 or more)"
            " (see sift pub --help)");
  EXPECT_EQ(ErrorOf({"sub", "a", "--count", "x"}),
            "sub: invalid count 'x' for --count (0 or more; 0: no limit)"
            " (see sift sub --help)");
  EXPECT_EQ(ErrorOf({"reply", "a", "--echo", "--count", "-1"}),
            "reply: invalid count '-1' for --count (0 or more; 0: no limit)"
            " (see sift reply --help)");
  EXPECT_EQ(ErrorOf({"sub", "a", "--slow", "drop-oldest",
                     "--max-pending-msgs", "0"}),
            "sub: invalid count '0' for --max-pending-msgs (1 to "
            "4294967295)"
            " (see sift sub --help)");
  EXPECT_EQ(ErrorOf({"stream", "add", "s", "--subjects", "a", "--max-msgs",
                     "-1"}),
            "stream add: invalid count '-1' for --max-msgs (0 or more; 0: no "
            "limit)"
            " (see sift stream add --help)");
  // Control characters, quotes and backslashes escaped.
  EXPECT_EQ(ErrorOf({"pub", "t", "m", "--count", "3\r"}),
            "pub: invalid count '3\\r' for --count (1 or more)"
            " (see sift pub --help)");
  // Other bytes as \xHH, hex in uppercase as everywhere else in sift; an
  // escaped backslash followed by 'x' stays as it was.
  EXPECT_EQ(ErrorOf({"pub", "t", "m", "--count", "3\xe9\x1b\\xab"}),
            "pub: invalid count '3\\xE9\\x1B\\\\xab' for --count (1 or more)"
            " (see sift pub --help)");
  // A bare number is a missing unit (the ack flags' bare numbers are ms).
  EXPECT_EQ(ErrorOf({"stats", "--connect_timeout", "1"}),
            "stats: invalid duration '1' for --connect_timeout (give its "
            "unit, e.g. 500ms, 2s, 1m30s; more than 0) (see sift stats "
            "--help)");
  EXPECT_EQ(ErrorOf({"sub", "a", "--timeout", "1s\n"}),
            "sub: invalid duration '1s\\n' for --timeout (use e.g. 500ms, "
            "2s, 1m30s; more than 0)"
            " (see sift sub --help)");
  EXPECT_THAT(ErrorOf({"sub", "a", "--ack", "--max-deliver", "\x01"}),
              HasSubstr("invalid count '\\x01' for --max-deliver"));
  EXPECT_THAT(ErrorOf({"stream", "add", "s", "--subjects", "a",
                       "--max-bytes", "1\tGiB"}),
              HasSubstr("invalid size '1\\tGiB'"));
}

// stream add refuses, as usage errors (exit 2), the values the broker
// would refuse (exit 1): a --dedup-window over 7 days, a --max-age over
// 2^53 ms, sizes below a segment or over 1GiB a segment, --max-bytes below
// --segment-bytes. --segment-bytes 0 is the broker's default, not "no
// limit", and its error says so.
TEST(StreamArgsTest, StreamAddRefusesWhatTheBrokerWould) {
  const std::vector<std::string> add = {"stream", "add", "s", "--subjects",
                                        "a"};
  auto with = [&add](std::vector<std::string> more) {
    std::vector<std::string> argv = add;
    argv.insert(argv.end(), more.begin(), more.end());
    return argv;
  };
  absl::StatusOr<Args> args = Parse(with({"--dedup-window", "168h"}));
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->dedup_window, absl::Hours(168));
  EXPECT_EQ(ErrorOf(with({"--dedup-window", "169h"})),
            "stream add: invalid duration '169h' for --dedup-window (whole "
            "milliseconds from 1ms to 168h (7 days), e.g. 500ms, 30s, 2m; a "
            "bare number is milliseconds)"
            " (see sift stream add --help)");
  EXPECT_THAT(ErrorOf(with({"--dedup-window", "604800001"})),
              HasSubstr("to 168h (7 days)"));
  args = Parse(with({"--max-age", "9007199254740992"}));
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(ErrorOf(with({"--max-age", "9007199254740993"})),
              HasSubstr("invalid duration '9007199254740993' for --max-age"));
  EXPECT_THAT(ErrorOf(with({"--max-age", "3000000000h"})),
              HasSubstr("invalid duration '3000000000h' for --max-age"));

  args = Parse(with({"--segment-bytes", "0", "--max-bytes", "0"}));
  ASSERT_TRUE(args.ok()) << args.status();
  args = Parse(with({"--segment-bytes", "4KiB", "--max-bytes", "4096"}));
  ASSERT_TRUE(args.ok()) << args.status();
  args = Parse(with({"--segment-bytes", "1GiB"}));
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(ErrorOf(with({"--segment-bytes", "4095"})),
            "stream add: invalid size '4095' for --segment-bytes (4096 to "
            "1073741824 bytes, 4KiB to 1GiB; 0: the broker's default, "
            "64MiB, or a quarter of --max-bytes if less (at least 4KiB))"
            " (see sift stream add --help)");
  EXPECT_THAT(ErrorOf(with({"--segment-bytes", "1073741825"})),
              HasSubstr("(4096 to 1073741824 bytes"));
  EXPECT_THAT(ErrorOf(with({"--segment-bytes", "lots"})),
              HasSubstr("0: the broker's default, 64MiB"));
  EXPECT_THAT(ErrorOf(with({"--segment-bytes", "lots"})),
              Not(HasSubstr("no limit")));
  EXPECT_EQ(ErrorOf(with({"--max-bytes", "4095"})),
            "stream add: invalid size '4095' for --max-bytes (0: no limit, or "
            "at least 4096 bytes, 4KiB)"
            " (see sift stream add --help)");
  EXPECT_EQ(ErrorOf(with({"--max-bytes", "1MiB", "--segment-bytes", "2MiB"})),
            "stream add: --max-bytes (1048576) is below --segment-bytes "
            "(2097152): retention removes whole segments (leave "
            "--segment-bytes out and the broker picks it from --max-bytes) "
            "(see sift stream add --help)");
}

}  // namespace
}  // namespace sift::cli
