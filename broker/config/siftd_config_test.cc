// Tests of SiftdConfig: the config file's sections read with the settings,
// and --print-config's output, which must load back as the same config.
#include "broker/config/siftd_config.h"

#include <cstdlib>
#include <fstream>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broker/config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift {

// Lets gtest print a SiftdConfig in failure messages.
void PrintTo(const SiftdConfig& config, std::ostream* os) {
  *os << "\n" << SiftdConfigToToml(config);
}

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Every section, with what is easy to lose on the way back: order (chain
// settings, headers, streams, schedules), keys that need quoting, values
// that need escaping, non-string chain settings, defaults left out.
constexpr std::string_view kFullConfig = R"toml(
endpoints = ["tcp://127.0.0.1:7441"]
max_payload_bytes = 4096
stats_top_topics = 7
data_dir = "/var/lib/sift"

[[plugin_libraries]]
path = "/nonexistent/libkeyword.so"
required = false

[[plugin_libraries]]
path = "/usr/lib/sift/lib with space.so"

[[routes]]
pattern = "orders.>"

[[routes.chain]]
plugin = "header_filter"
expr = "region == 'eu' && note != \"x\""

[[routes.chain]]
plugin = "header_set"
set.tenant = "eu"
'set.b' = "second"
limit = 5
ratio = 0.25
flag = true
list = ["a", "b"]

[[routes]]
pattern = "logs.*"

[[message_types]]
pattern = "orders.>"
type = "shop.Order"
descriptor_set = "/etc/sift/shop.pb"

[subscriptions]
plugins = ["header_filter", "sample"]
descriptor_sets = ["/etc/sift/shop.pb"]

[[streams]]
name = "orders"
subjects = ["orders.>", "billing.*"]
max_age_ms = 86400000
max_bytes = 1048576
fsync = "10ms"
dedup_window_ms = 60000

[[streams]]
name = "audit"
subjects = ["audit.>"]
fsync = "never"
max_msgs = 1000

[[schedules]]
name = "tick"
topic = "clock.tick"
every_ms = 1000

[[schedules]]
name = "report"
topic = "reports.daily"
payload = "\nline one\nsaid \"hi\" 'there' ''' \\ \u00e9\u0001"
cron = "0 6 * * MON-FRI"
headers = { z-last = "1", Content-Type = "text/plain", "a.b" = "dotted" }
)toml";

std::string WriteTempFile(std::string_view name, std::string_view text) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path =
      std::string(dir != nullptr ? dir : "/tmp") + "/" + std::string(name);
  std::ofstream(path) << text;
  return path;
}

absl::StatusOr<CommandLine> ParseArgs(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/siftd");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  return ParseCommandLine(static_cast<int>(args.size()), argv.data(), "1.2.3");
}

// What siftd --config FILE ARGS... loads.
absl::StatusOr<SiftdConfig> Load(const std::string& file,
                                 std::vector<std::string> args = {}) {
  args.insert(args.begin(), "--config=" + file);
  absl::StatusOr<CommandLine> cli = ParseArgs(std::move(args));
  if (!cli.ok()) return cli.status();
  return LoadSiftdConfig(*cli);
}

TEST(SiftdConfigTest, ReadsEverySection) {
  absl::StatusOr<SiftdConfig> config =
      Load(WriteTempFile("full.toml", kFullConfig));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->settings.stats_top_topics, 7u);
  ASSERT_EQ(config->plugins.libraries.size(), 2u);
  EXPECT_FALSE(config->plugins.libraries[0].required);
  ASSERT_EQ(config->plugins.routes.size(), 2u);
  ASSERT_EQ(config->plugins.routes[0].chain.size(), 2u);
  EXPECT_EQ(config->plugins.routes[0].chain[1].config.entries().size(), 6u);
  EXPECT_EQ(config->plugins.message_types.size(), 1u);
  ASSERT_EQ(config->streams.size(), 2u);
  EXPECT_EQ(config->streams[1].name, "audit");
  ASSERT_EQ(config->schedules.size(), 2u);
  EXPECT_EQ(config->schedules[1].headers.size(), 3u);
  EXPECT_EQ(config->schedules[1].payload,
            "\nline one\nsaid \"hi\" 'there' ''' \\ \xc3\xa9\x01");
}

// The whole round trip: siftd --config FILE --print-config, then the output
// given back with --config, loads as the same config; and printing that
// again gives the same text.
TEST(SiftdConfigTest, PrintedConfigLoadsBackAsTheSameConfig) {
  const std::string file = WriteTempFile("full.toml", kFullConfig);
  absl::StatusOr<CommandLine> cli = ParseArgs(
      {"--config", file, "--print-config", "--max_headers=32"});
  ASSERT_TRUE(cli.ok()) << cli.status();
  ASSERT_EQ(cli->action, CommandLine::Action::kPrintConfig);
  absl::StatusOr<SiftdConfig> first = LoadSiftdConfig(*cli);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->settings.max_headers, 32u);
  const std::string printed = SiftdConfigToToml(*first);

  absl::StatusOr<SiftdConfig> again =
      Load(WriteTempFile("printed.toml", printed));
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << printed;
  EXPECT_EQ(*again, *first) << printed;
  EXPECT_EQ(SiftdConfigToToml(*again), printed);

  // Every section is there, and what is ordered kept its order.
  for (const char* section :
       {"\n[[plugin_libraries]]\n", "\n[[routes]]\n", "\n[[routes.chain]]\n",
        "\n[[message_types]]\n", "\n[subscriptions]\n", "\n[[streams]]\n",
        "\n[[schedules]]\n", "\n[schedules.headers]\n"}) {
    EXPECT_THAT(printed, HasSubstr(section));
  }
  EXPECT_THAT(printed, HasSubstr("\nmax_headers = 32\n"));
  EXPECT_THAT(printed, HasSubstr("\n\"set.tenant\" = \"eu\"\n"));
  EXPECT_THAT(printed, HasSubstr("\nlimit = \"5\"\n"));
  EXPECT_THAT(printed, HasSubstr("\nfsync = \"10ms\"\n"));
  EXPECT_THAT(printed, HasSubstr("\ncron = \"0 6 * * MON-FRI\"\n"));
  EXPECT_LT(printed.find("z-last"), printed.find("Content-Type"));
  EXPECT_LT(printed.find("Content-Type"), printed.find("\"a.b\""));
  EXPECT_LT(printed.find("\"set.tenant\""), printed.find("\"set.b\""));
  EXPECT_LT(printed.find("\"orders\""), printed.find("\"audit\""));
  EXPECT_LT(printed.find("\"tick\""), printed.find("\"report\""));
}

TEST(SiftdConfigTest, CronShorthandAndEmptyPayloadRoundTrip) {
  const std::string file = WriteTempFile("cron.toml", R"toml(
[[schedules]]
name = "nightly"
topic = "jobs.nightly"
payload = ""
cron = "@daily"
)toml");
  absl::StatusOr<SiftdConfig> first = Load(file);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string printed = SiftdConfigToToml(*first);
  EXPECT_THAT(printed, HasSubstr("\ncron = \"@daily\"\n"));
  EXPECT_THAT(printed, Not(HasSubstr("[schedules.headers]")));
  absl::StatusOr<SiftdConfig> again =
      Load(WriteTempFile("cron_printed.toml", printed));
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << printed;
  EXPECT_EQ(*again, *first);
}

// Without --config: the settings, the default [subscriptions], and comments
// saying that there are no libraries, routes, streams or schedules.
TEST(SiftdConfigTest, WithoutAFileTheDefaultsArePrinted) {
  absl::StatusOr<CommandLine> cli = ParseArgs({"--print-config"});
  ASSERT_TRUE(cli.ok()) << cli.status();
  absl::StatusOr<SiftdConfig> config = LoadSiftdConfig(*cli);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config, SiftdConfig{});
  const std::string printed = SiftdConfigToToml(*config);
  EXPECT_THAT(printed,
              HasSubstr("\n[subscriptions]\nplugins = [ \"header_filter\", "));
  EXPECT_THAT(printed, HasSubstr("\n# No streams.\n"));
  EXPECT_THAT(printed, HasSubstr("\n# No schedules.\n"));
  absl::StatusOr<SiftdConfig> again =
      Load(WriteTempFile("defaults_printed.toml", printed));
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << printed;
  EXPECT_EQ(*again, *config);
}

TEST(SiftdConfigTest, ErrorsNameTheFile) {
  const std::string no_dir = WriteTempFile("no_dir.toml", R"toml(
[[streams]]
name = "orders"
subjects = ["orders.>"]
)toml");
  absl::StatusOr<SiftdConfig> config = Load(no_dir);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            no_dir +
                ": [[streams]] needs data_dir: set data_dir (or "
                "--data_dir=DIR) to where siftd may keep them");
  // A flag supplies it.
  EXPECT_TRUE(Load(no_dir, {"--data_dir=/var/lib/sift"}).ok());

  // A schedule's payload is held to the settings' limits, flags included.
  const std::string big = WriteTempFile("big.toml", R"toml(
[[schedules]]
name = "big"
topic = "a.b"
payload = "0123456789"
every_ms = 1000
)toml");
  EXPECT_TRUE(Load(big).ok());
  absl::StatusOr<SiftdConfig> too_big = Load(big, {"--max_payload_bytes=5"});
  ASSERT_FALSE(too_big.ok());
  EXPECT_THAT(std::string(too_big.status().message()),
              HasSubstr("over max_payload_bytes (5)"));

  const std::string bad_route = WriteTempFile("bad_route.toml", R"toml(
[[routes]]
pattern = "orders.>"
[[routes.chain]]
expr = "x"
)toml");
  absl::StatusOr<SiftdConfig> route = Load(bad_route);
  ASSERT_FALSE(route.ok());
  EXPECT_THAT(std::string(route.status().message()),
              HasSubstr(bad_route + ":4: route 1: chain entry needs plugin"));
}

}  // namespace
}  // namespace sift
