#include "broker/config/config.h"

#include <cstdlib>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift {

// Lets gtest print a Config in failure messages.
void PrintTo(const Config& config, std::ostream* os) {
  *os << "\n" << ConfigToToml(config);
}

namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// The setting names, read from ConfigToToml's `name = value` lines, so the
// tests follow the settings table without a copy of it.
std::vector<std::string> SettingNames() {
  std::vector<std::string> names;
  std::istringstream toml(ConfigToToml(Config{}));
  for (std::string line; std::getline(toml, line);) {
    if (line.empty() || line[0] == '#') continue;
    names.push_back(line.substr(0, line.find(" = ")));
  }
  return names;
}

// The error message of parsing `toml` as siftd.toml; "" if it parsed.
std::string TomlError(std::string_view toml) {
  absl::StatusOr<Config> config = ParseConfigToml(toml, "siftd.toml");
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

absl::StatusOr<CommandLine> ParseArgs(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/siftd");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  return ParseCommandLine(static_cast<int>(args.size()), argv.data(), "1.2.3");
}

std::string ArgsError(std::vector<std::string> args) {
  absl::StatusOr<CommandLine> parsed = ParseArgs(std::move(args));
  if (parsed.ok()) return "";
  return std::string(parsed.status().message());
}

// Writes `text` to a fresh file under the test's temporary directory.
std::string WriteTempFile(std::string_view name, std::string_view text) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path =
      std::string(dir != nullptr ? dir : "/tmp") + "/" + std::string(name);
  std::ofstream(path) << text;
  return path;
}

TEST(DefaultConfigTest, ParsingTheDefaultTomlGivesTheDefaults) {
  absl::StatusOr<Config> parsed =
      ParseConfigToml(DefaultConfigToml(), "default_config.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, Config{});
  EXPECT_TRUE(ValidateConfig(Config{}).ok());
}

TEST(DefaultConfigTest, DefaultTomlSetsAndDocumentsEverySetting) {
  const std::string toml = "\n" + std::string(DefaultConfigToml());
  const std::vector<std::string> names = SettingNames();
  EXPECT_THAT(names, Contains("endpoints"));
  EXPECT_THAT(names, Contains("log_level"));
  for (const std::string& name : names) {
    EXPECT_THAT(toml, HasSubstr("\n" + name + " = ")) << name;
  }
  // An explanation ends right above every key.
  EXPECT_THAT(toml, Not(HasSubstr("\n\nmax_"))) << toml;
}

TEST(DefaultConfigTest, EmbeddedTextIsTheFileInTheRepository) {
  std::ifstream file("broker/config/default_config.toml");
  ASSERT_TRUE(file.good());
  std::stringstream text;
  text << file.rdbuf();
  EXPECT_EQ(DefaultConfigToml(), text.str());
}

TEST(ParseConfigTomlTest, SetsOnlyTheKeysGivenOnTopOfTheBase) {
  Config base;
  base.max_topic_length = 99;
  absl::StatusOr<Config> parsed = ParseConfigToml(
      "# comment\n"
      "endpoints = [\"ipc:///tmp/sift.sock\", \"tcp://*:0\",\n"
      "             \"inproc://broker\"]\n"
      "max_payload_bytes = 2_097_152\n"
      "client_timeout_ms = 0\n"
      "log_level = \"debug\"\n",
      "siftd.toml", base);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  Config want = base;
  want.endpoints = {"ipc:///tmp/sift.sock", "tcp://*:0", "inproc://broker"};
  want.max_payload_bytes = 2097152;
  want.client_timeout_ms = 0;
  want.log_level = "debug";
  EXPECT_EQ(*parsed, want);
  EXPECT_EQ(parsed->max_topic_length, 99u);

  absl::StatusOr<Config> empty = ParseConfigToml("", "empty.toml");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, Config{});
}

TEST(ParseConfigTomlTest, SyntaxErrorNamesFileLineAndColumn) {
  const std::string error = TomlError(
      "max_topic_tokens = 16\n"
      "max_topic_length = = 3\n");
  EXPECT_THAT(error, StartsWith("siftd.toml:2:"));
  EXPECT_THAT(error, HasSubstr(": syntax error: "));

  EXPECT_THAT(TomlError("log_level = \"info\nsend_hwm = 1\n"),
              StartsWith("siftd.toml:1:"));
  EXPECT_THAT(TomlError("send_hwm = 1\nsend_hwm = 2\n"),
              StartsWith("siftd.toml:2:"));
}

TEST(ParseConfigTomlTest, UnknownKeySuggestsTheClosestSetting) {
  EXPECT_EQ(TomlError("# siftd.toml\n\n\n\n\nmax_topic_tokens = 8\n"
                      "max_paylod_bytes = 1024\n"),
            "siftd.toml:7: unknown setting \"max_paylod_bytes\" (did you "
            "mean \"max_payload_bytes\"?)");
  EXPECT_EQ(TomlError("log-level = \"warn\""),
            "siftd.toml:1: unknown setting \"log-level\" (did you mean "
            "\"log_level\"?)");
  EXPECT_EQ(TomlError("port = 7440"), "siftd.toml:1: unknown setting \"port\"");
  EXPECT_EQ(TomlError("[server]\nsend_hwm = 5\n"),
            "siftd.toml:1: unknown setting \"server\"");
}

TEST(ParseConfigTomlTest, WrongTypeNamesKeyAndBothTypes) {
  EXPECT_EQ(TomlError("\nmax_topic_tokens = \"16\""),
            "siftd.toml:2: setting \"max_topic_tokens\" must be an integer, "
            "not a string");
  EXPECT_EQ(TomlError("max_payload_bytes = 1.5"),
            "siftd.toml:1: setting \"max_payload_bytes\" must be an integer, "
            "not a floating-point number");
  EXPECT_EQ(TomlError("log_level = 3"),
            "siftd.toml:1: setting \"log_level\" must be a string, not an "
            "integer");
  EXPECT_EQ(TomlError("endpoints = \"tcp://127.0.0.1:7440\""),
            "siftd.toml:1: setting \"endpoints\" must be an array of strings, "
            "not a string");
  EXPECT_EQ(TomlError("endpoints = [\n  \"tcp://127.0.0.1:7440\",\n  7441,\n]"),
            "siftd.toml:3: setting \"endpoints\" entry 2 must be a string, "
            "not an integer");
  EXPECT_EQ(TomlError("send_hwm = true"),
            "siftd.toml:1: setting \"send_hwm\" must be an integer, not a "
            "boolean");
}

TEST(ParseConfigTomlTest, OutOfRangeNamesKeyRangeAndValue) {
  EXPECT_EQ(TomlError("max_topic_tokens = 65"),
            "siftd.toml:1: setting \"max_topic_tokens\" must be between 3 "
            "and 64 (got 65)");
  EXPECT_EQ(TomlError("max_payload_bytes = 0"),
            "siftd.toml:1: setting \"max_payload_bytes\" must be between 1 "
            "and 1073741824 (got 0)");
  EXPECT_EQ(TomlError("send_hwm = -1"),
            "siftd.toml:1: setting \"send_hwm\" must be between 0 and "
            "2147483647 (got -1)");
  EXPECT_EQ(TomlError("match_cache_size = 9223372036854775807"),
            "siftd.toml:1: setting \"match_cache_size\" must be between 0 and "
            "16777216 (got 9223372036854775807)");
  EXPECT_EQ(TomlError("log_level = \"verbose\""),
            "siftd.toml:1: setting \"log_level\" must be debug, info, warn or "
            "error (got \"verbose\")");
}

TEST(ParseConfigTomlTest, BadEndpointsNameTheEntry) {
  EXPECT_EQ(TomlError("endpoints = [\n  \"tcp://127.0.0.1:7440\",\n"
                      "  \"http://127.0.0.1:80\",\n]"),
            "siftd.toml:3: setting \"endpoints\" entry "
            "\"http://127.0.0.1:80\" must start with tcp://, ipc:// or "
            "inproc://");
  // sockaddr_un's sun_path holds 107 bytes of path.
  const std::string path = "/" + std::string(107, 'a');
  EXPECT_EQ(TomlError("endpoints = [\"ipc://" + path + "\"]"),
            "siftd.toml:1: setting \"endpoints\" entry \"ipc://" + path +
                "\" has a path of 108 bytes, over the 107 a Unix socket's "
                "path may have");
  EXPECT_EQ(TomlError("endpoints = [\"tcp://127.0.0.1\"]"),
            "siftd.toml:1: setting \"endpoints\" entry \"tcp://127.0.0.1\" "
            "must be tcp://HOST:PORT");
  EXPECT_EQ(TomlError("endpoints = [\"tcp://127.0.0.1:70000\"]"),
            "siftd.toml:1: setting \"endpoints\" entry "
            "\"tcp://127.0.0.1:70000\" must end in a port from 0 to 65535, or "
            "* (tcp://HOST:PORT)");
  EXPECT_EQ(TomlError("endpoints = [\"ipc://\"]"),
            "siftd.toml:1: setting \"endpoints\" entry \"ipc://\" needs a path "
            "after ipc://");
  EXPECT_EQ(TomlError("endpoints = [\"inproc:// x\"]"),
            "siftd.toml:1: setting \"endpoints\" entry \"inproc:// x\" must "
            "not contain spaces or control characters");
  EXPECT_EQ(TomlError("endpoints = []"),
            "siftd.toml:1: setting \"endpoints\" must list at least 1 entry");
  EXPECT_EQ(TomlError("endpoints = [\"inproc://a\", \"inproc://a\"]"),
            "siftd.toml:1: setting \"endpoints\" lists \"inproc://a\" twice");
  EXPECT_EQ(TomlError("endpoints = [\"tcp://[::1]:7440\", \"tcp://eth0:*\"]"),
            "");
}

TEST(ParseConfigTomlTest, ReportsEveryProblemInFileOrder) {
  EXPECT_EQ(TomlError("send_hwm = \"x\"\n"
                      "aaa = 1\n"
                      "max_topic_tokens = 0\n"),
            "siftd.toml:1: setting \"send_hwm\" must be an integer, not a "
            "string\n"
            "siftd.toml:2: unknown setting \"aaa\"\n"
            "siftd.toml:3: setting \"max_topic_tokens\" must be between 3 and "
            "64 (got 0)");
}

TEST(ValidateConfigTest, NamesTheBadSetting) {
  Config config;
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.max_topic_tokens = 100;
  EXPECT_EQ(ValidateConfig(config).message(),
            "setting \"max_topic_tokens\" must be between 3 and 64 (got 100)");
  config = Config{};
  config.endpoints = {"udp://1.2.3.4:5"};
  EXPECT_EQ(ValidateConfig(config).message(),
            "setting \"endpoints\" entry \"udp://1.2.3.4:5\" must start with "
            "tcp://, ipc:// or inproc://");
  config = Config{};
  config.log_level = "loud";
  EXPECT_EQ(ValidateConfig(config).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConfigToTomlTest, RoundTripsThroughParseConfigToml) {
  Config config;
  config.endpoints = {"ipc:///tmp/odd\"name\\x", "tcp://0.0.0.0:1"};
  config.max_payload_bytes = 1073741824;
  config.max_topic_tokens = 64;
  config.client_timeout_ms = 0;
  config.send_hwm = 0;
  config.match_cache_size = 0;
  config.log_level = "error";
  const std::string toml = ConfigToToml(config);
  absl::StatusOr<Config> parsed = ParseConfigToml(toml, "printed.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << toml;
  EXPECT_EQ(*parsed, config);
  EXPECT_NE(*parsed, Config{});
  EXPECT_THAT(toml, HasSubstr("\nmax_payload_bytes = 1073741824\n"));
}

TEST(CommandLineTest, NoArgumentsRunWithTheDefaults) {
  absl::StatusOr<CommandLine> parsed = ParseArgs({});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->action, CommandLine::Action::kRun);
  EXPECT_EQ(parsed->config, Config{});
  EXPECT_EQ(parsed->output, "");
}

TEST(CommandLineTest, FlagsOverrideTheFileWhichOverridesDefaults) {
  const std::string path = WriteTempFile(
      "override.toml",
      "max_topic_tokens = 8\nmax_topic_length = 100\nlog_level = \"warn\"\n");
  // Flags win even when they come before --config.
  absl::StatusOr<CommandLine> parsed =
      ParseArgs({"--max_topic_tokens=32", "--config", path,
                 "--endpoints=tcp://*:7440, ipc:///tmp/s", "--log-level",
                 "debug", "-send_hwm=5", "--send_hwm=6"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->action, CommandLine::Action::kRun);
  Config want;
  want.max_topic_tokens = 32;   // Flag over file.
  want.max_topic_length = 100;  // File over default.
  want.log_level = "debug";
  want.endpoints = {"tcp://*:7440", "ipc:///tmp/s"};
  want.send_hwm = 6;  // The last of a repeated flag.
  EXPECT_EQ(parsed->config, want);
}

TEST(CommandLineTest, BadFlagsAreErrors) {
  EXPECT_EQ(ArgsError({"--max_paylod_bytes=5"}),
            "unknown flag --max_paylod_bytes (did you mean "
            "--max_payload_bytes?)");
  EXPECT_EQ(ArgsError({"--print_conifg"}),
            "unknown flag --print_conifg (did you mean --print-config?)");
  EXPECT_EQ(ArgsError({"--port=1"}), "unknown flag --port");
  EXPECT_EQ(ArgsError({"--max_topic_tokens=65"}),
            "flag --max_topic_tokens must be between 3 and 64 (got 65)");
  EXPECT_EQ(ArgsError({"--send_hwm=-3"}),
            "flag --send_hwm must be between 0 and 2147483647 (got -3)");
  EXPECT_EQ(ArgsError({"--send_hwm=99999999999999999999"}),
            "flag --send_hwm must be an integer (got "
            "\"99999999999999999999\")");
  EXPECT_EQ(ArgsError({"--send_hwm=lots"}),
            "flag --send_hwm must be an integer (got \"lots\")");
  EXPECT_EQ(ArgsError({"--endpoints=tcp://a:1,http://b"}),
            "flag --endpoints entry \"http://b\" must start with tcp://, "
            "ipc:// or inproc://");
  EXPECT_EQ(ArgsError({"--endpoints="}),
            "flag --endpoints must list at least 1 entry");
  EXPECT_EQ(ArgsError({"--log_level=loud"}),
            "flag --log_level must be debug, info, warn or error (got "
            "\"loud\")");
  EXPECT_EQ(ArgsError({"--send_hwm"}), "flag --send_hwm needs a value");
  // The next flag is not the value: `--config --log_level=debug` would
  // have read a config file named "--log_level=debug".
  EXPECT_EQ(ArgsError({"--config", "--log_level=debug"}),
            "flag --config needs a value (--log_level=debug after it is a "
            "flag; a value that starts with -- is written "
            "--config=--log_level=debug)");
  EXPECT_EQ(ArgsError({"--version=2"}), "flag --version takes no value");
  EXPECT_EQ(ArgsError({"run"}),
            "unexpected argument \"run\" (siftd takes only flags; see --help)");
  EXPECT_EQ(ArgsError({"--", "--send_hwm=1"}),
            "unexpected argument \"--send_hwm=1\" (siftd takes only flags; "
            "see --help)");
}

TEST(CommandLineTest, HelpListsEveryFlagWithDefaultAndDescription) {
  for (const char* flag : {"--help", "-h", "-help"}) {
    absl::StatusOr<CommandLine> parsed = ParseArgs({"--bogus", flag});
    ASSERT_TRUE(parsed.ok()) << flag << ": " << parsed.status();
    EXPECT_EQ(parsed->action, CommandLine::Action::kExit);
    EXPECT_EQ(parsed->exit_code, 0);
    const std::string& help = parsed->output;
    EXPECT_THAT(help, StartsWith("Usage: siftd "));
    for (const std::string& name : SettingNames()) {
      EXPECT_THAT(help, HasSubstr("\n  --" + name + "=")) << name;
    }
    for (const char* general :
         {"--config=FILE", "--print-config", "--version", "--help"}) {
      EXPECT_THAT(help, HasSubstr(general));
    }
    EXPECT_THAT(help,
                HasSubstr("\n  --max_topic_tokens=N (3 to 64; default 16)\n"
                          "      Most dot-separated tokens in a topic or "
                          "pattern (at least 3, for reply topics).\n"));
    EXPECT_THAT(help, HasSubstr("\n  --endpoints=ENDPOINT[,ENDPOINT...] "
                                "(default tcp://127.0.0.1:7440)\n"));
    EXPECT_THAT(help, HasSubstr("\n  --log_level=LEVEL (default info)\n"));
  }
}

TEST(CommandLineTest, Version) {
  absl::StatusOr<CommandLine> parsed = ParseArgs({"--version"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->action, CommandLine::Action::kExit);
  EXPECT_EQ(parsed->exit_code, 0);
  EXPECT_EQ(parsed->output, "siftd 1.2.3\n");
}

// Rules between settings are checked once file and flags are applied: a
// flag may settle what the file alone breaks, and a flag may break it too.
TEST(CommandLineTest, RulesBetweenSettingsApplyToTheEffectiveConfig) {
  const std::string path = WriteTempFile(
      "pending.toml", "max_pending_bytes_per_client = 2147483648\n");
  absl::StatusOr<CommandLine> settled =
      ParseArgs({"--config=" + path, "--max_pending_bytes=4294967296"});
  ASSERT_TRUE(settled.ok()) << settled.status();
  EXPECT_EQ(settled->config.max_pending_bytes, uint64_t{4294967296});
  absl::StatusOr<CommandLine> broken = ParseArgs({"--config=" + path});
  ASSERT_FALSE(broken.ok());
  EXPECT_THAT(std::string(broken.status().message()),
              HasSubstr("must be at least \"max_pending_bytes_per_client\""));
  EXPECT_FALSE(ParseArgs({"--max_pending_bytes=65536"}).ok());
  EXPECT_FALSE(
      ParseConfigToml("max_pending_bytes_per_client = 2147483648\n", "f").ok());
}

// --print-config asks for the effective config: the settings here, the
// file's sections too (siftd_config_test, tests/print_config_test).
TEST(CommandLineTest, PrintConfigAsksForTheEffectiveConfig) {
  const std::string path =
      WriteTempFile("print.toml", "stats_top_topics = 7\n");
  absl::StatusOr<CommandLine> parsed = ParseArgs(
      {"--print-config", "--config=" + path, "--endpoints=inproc://x"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->action, CommandLine::Action::kPrintConfig);
  EXPECT_EQ(parsed->exit_code, 0);
  EXPECT_EQ(parsed->output, "");
  EXPECT_EQ(parsed->config_path, path);
  const std::string toml = ConfigToToml(parsed->config);
  EXPECT_THAT(toml, HasSubstr("\nstats_top_topics = 7\n"));
  EXPECT_THAT(toml, HasSubstr("\nendpoints = [\"inproc://x\"]\n"));
  absl::StatusOr<Config> reparsed = ParseConfigToml(toml, "printed.toml");
  ASSERT_TRUE(reparsed.ok()) << reparsed.status();
  EXPECT_EQ(*reparsed, parsed->config);

  // The printed settings, fed back through --config, give the same config.
  const std::string printed = WriteTempFile("printed.toml", toml);
  absl::StatusOr<CommandLine> again = ParseArgs({"--config", printed});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->action, CommandLine::Action::kRun);
  EXPECT_EQ(again->config, parsed->config);
}

TEST(CommandLineTest, MissingConfigFileIsAClearError) {
  absl::StatusOr<CommandLine> parsed =
      ParseArgs({"--config=/nonexistent/siftd.toml"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(parsed.status().message(),
            "cannot read config file \"/nonexistent/siftd.toml\": No such "
            "file or directory");

  EXPECT_EQ(ArgsError({"--config"}), "flag --config needs a value");
}

TEST(CommandLineTest, BadConfigFileNamesThePath) {
  const std::string path =
      WriteTempFile("bad.toml", "send_hwm = 1\nmax_topics_tokens = 3\n");
  EXPECT_EQ(ArgsError({"--config", path}),
            path +
                ":2: unknown setting \"max_topics_tokens\" (did you mean "
                "\"max_topic_tokens\"?)");
}

}  // namespace
}  // namespace sift
