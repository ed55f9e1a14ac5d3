#include "broker/log/log.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

// Captures log lines for one test and restores stderr and the level after.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSinkForTesting(
        [this](std::string_view line) { lines_.emplace_back(line); });
    SetLogLevel(LogLevel::kInfo);
  }
  void TearDown() override {
    SetLogSinkForTesting(nullptr);
    SetLogLevel(LogLevel::kInfo);
  }

  // The captured line without its "ts=... " prefix.
  std::string WithoutTimestamp(size_t i) const {
    const std::string& line = lines_.at(i);
    return line.substr(line.find(' ') + 1);
  }

  std::vector<std::string> lines_;
};

std::string Logfmt(std::string_view value) {
  std::string out;
  AppendLogfmtValue(value, &out);
  return out;
}

TEST_F(LogTest, FormatsOneLineWithFields) {
  const std::string id = "c7";
  Log(LogLevel::kInfo, "client connected",
      {{"client", id}, {"endpoint", "tcp://127.0.0.1:7440"}, {"bytes", 12}});
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_THAT(lines_[0],
              MatchesRegex("ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                           "[0-9]{2}\\.[0-9]{3}Z .*\n"));
  EXPECT_EQ(WithoutTimestamp(0),
            "level=info msg=\"client connected\" client=c7 "
            "endpoint=tcp://127.0.0.1:7440 bytes=12\n");
}

TEST_F(LogTest, FormatsEveryValueType) {
  const std::string owned = "s";
  const absl::string_view absl_view = "av";
  const std::string_view std_view = "sv";
  Log(LogLevel::kWarn, "types",
      {{"str", owned},
       {"cstr", "c"},
       {"sv", std_view},
       {"av", absl_view},
       {"i", -3},
       {"i64", int64_t{-9000000000}},
       {"u64", uint64_t{18446744073709551615u}},
       {"u8", uint8_t{200}},
       {"d", 0.25},
       {"f", 1.5f},
       {"yes", true},
       {"no", false}});
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(WithoutTimestamp(0),
            "level=warn msg=types str=s cstr=c sv=sv av=av i=-3 "
            "i64=-9000000000 u64=18446744073709551615 u8=200 d=0.25 f=1.5 "
            "yes=true no=false\n");
}

TEST_F(LogTest, QuotesAndEscapesValues) {
  EXPECT_EQ(Logfmt("plain"), "plain");
  EXPECT_EQ(Logfmt("a\\b"), "a\\b");  // A backslash alone needs no quotes.
  EXPECT_EQ(Logfmt(""), "\"\"");
  EXPECT_EQ(Logfmt("two words"), "\"two words\"");
  EXPECT_EQ(Logfmt("k=v"), "\"k=v\"");
  EXPECT_EQ(Logfmt("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(Logfmt("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(Logfmt("line\nbreak\r\ttab"), "\"line\\nbreak\\r\\ttab\"");
  EXPECT_EQ(Logfmt(std::string_view("nul\0bell\a", 9)),
            "\"nul\\u0000bell\\u0007\"");
  EXPECT_EQ(Logfmt("del\x7f"), "\"del\\u007f\"");
  EXPECT_EQ(Logfmt("caf\xc3\xa9"), "caf\xc3\xa9");  // Valid UTF-8 as is.
  EXPECT_EQ(Logfmt("bad\xff"), "\"bad\\xff\"");
  EXPECT_EQ(Logfmt("\xc0\xaf"), "\"\\xc0\\xaf\"");           // Overlong.
  EXPECT_EQ(Logfmt("\xed\xa0\x80"), "\"\\xed\\xa0\\x80\"");  // Surrogate.
  EXPECT_EQ(Logfmt("cut\xe2\x82"), "\"cut\\xe2\\x82\"");     // Truncated.
}

TEST_F(LogTest, EscapesMessageAndSanitisesKeys) {
  Log(LogLevel::kError, "bad \"thing\"\n", {{"a key=", "v"}, {"", 1}});
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(WithoutTimestamp(0),
            "level=error msg=\"bad \\\"thing\\\"\\n\" a_key_=v _=1\n");
}

TEST_F(LogTest, DropsLinesBelowTheLevel) {
  Log(LogLevel::kDebug, "hidden");
  EXPECT_TRUE(lines_.empty());
  EXPECT_FALSE(LogEnabled(LogLevel::kDebug));
  EXPECT_TRUE(LogEnabled(LogLevel::kInfo));

  SetLogLevel(LogLevel::kDebug);
  EXPECT_EQ(GetLogLevel(), LogLevel::kDebug);
  Log(LogLevel::kDebug, "shown");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(WithoutTimestamp(0), "level=debug msg=shown\n");

  SetLogLevel(LogLevel::kError);
  Log(LogLevel::kWarn, "hidden");
  Log(LogLevel::kError, "shown");
  EXPECT_EQ(lines_.size(), 2u);
}

TEST_F(LogTest, LinesFromManyThreadsStayWhole) {
  constexpr int kThreads = 8;
  constexpr int kLinesPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < kLinesPerThread; ++i) {
        Log(LogLevel::kInfo, "tick", {{"thread", t}, {"i", i}});
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(lines_.size(), size_t{kThreads * kLinesPerThread});
  for (const std::string& line : lines_) {
    EXPECT_THAT(line, MatchesRegex("ts=[^ ]+ level=info msg=tick thread=[0-9]+ "
                                   "i=[0-9]+\n"));
  }
}

TEST(ParseLogLevelTest, AcceptsTheFourNames) {
  EXPECT_EQ(ParseLogLevel("debug").value(), LogLevel::kDebug);
  EXPECT_EQ(ParseLogLevel("info").value(), LogLevel::kInfo);
  EXPECT_EQ(ParseLogLevel("WARN").value(), LogLevel::kWarn);
  EXPECT_EQ(ParseLogLevel("error").value(), LogLevel::kError);
  for (LogLevel level :
       {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    EXPECT_EQ(ParseLogLevel(LogLevelName(level)).value(), level);
  }
}

TEST(ParseLogLevelTest, RejectsOthersWithTheAcceptedNames) {
  const absl::StatusOr<LogLevel> level = ParseLogLevel("verbose");
  ASSERT_FALSE(level.ok());
  EXPECT_EQ(level.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(level.status().message(),
            "unknown log level \"verbose\" (expected debug, info, warn or "
            "error)");
  EXPECT_FALSE(ParseLogLevel("").ok());
  EXPECT_FALSE(ParseLogLevel("warning").ok());
}

TEST(LogStderrTest, WritesToStderrWithoutSink) {
  ::testing::internal::CaptureStderr();
  Log(LogLevel::kInfo, "to stderr", {{"n", 1}});
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, HasSubstr(" level=info msg=\"to stderr\" n=1\n"));
}

}  // namespace
}  // namespace sift
