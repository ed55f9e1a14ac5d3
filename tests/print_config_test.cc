// siftd --print-config through the real binary: the whole effective
// configuration (settings, plugin sections, [[streams]], [[schedules]]) is
// printed as TOML that, given back with --config, prints the same and loads
// as the same configuration; and siftd runs with it.
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/config/config.h"
#include "broker/config/siftd_config.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "tests/harness.h"
#include "tests/siftd_process.h"

namespace sift::test {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(20);

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = absl::StrCat(TestTmpDir(), "/", name);
  std::ofstream(path) << text;
  return path;
}

struct Printed {
  int code;
  std::string out;  // stdout and stderr
};

// Runs `siftd --config FILE --print-config` (bounded).
Printed PrintConfig(const std::string& file) {
  absl::StatusOr<std::string> siftd = SiftdPath();
  EXPECT_TRUE(siftd.ok()) << siftd.status();
  if (!siftd.ok()) return {-1, ""};
  static int runs = 0;
  const std::string out =
      absl::StrCat(TestTmpDir(), "/print-", getpid(), "-", ++runs, ".txt");
  const pid_t pid = Spawn({*siftd, "--config", file, "--print-config"}, out);
  EXPECT_GT(pid, 0);
  if (pid <= 0) return {-1, ""};
  const int code = Reap(pid, kTimeout);
  return {code, ReadFile(out)};
}

// What siftd --config FILE loads (the library siftd uses).
absl::StatusOr<SiftdConfig> Load(const std::string& file) {
  std::string program = "siftd";
  std::string flag = "--config=" + file;
  char* argv[] = {program.data(), flag.data(), nullptr};
  absl::StatusOr<CommandLine> cli = ParseCommandLine(2, argv, "test");
  if (!cli.ok()) return cli.status();
  return LoadSiftdConfig(*cli);
}

TEST(PrintConfigTest, RoundTripsStreamsSchedulesAndPlugins) {
  std::string data_dir = absl::StrCat(TestTmpDir(), "/print-data-XXXXXX");
  ASSERT_NE(mkdtemp(data_dir.data()), nullptr);
  const std::string file = WriteFile("print_config.toml", absl::StrCat(R"toml(
stats_top_topics = 7
max_headers = 32
data_dir = ")toml", data_dir, R"toml("

[[plugin_libraries]]
path = "/nonexistent/libsift_missing.so"
required = false

[[routes]]
pattern = "orders.>"

[[routes.chain]]
plugin = "header_filter"
expr = "region == 'eu'"

[[routes.chain]]
plugin = "header_set"
set.tenant = "eu"
"set.source" = "gateway"

[subscriptions]
plugins = ["header_filter", "sample"]

[[streams]]
name = "orders"
subjects = ["orders.>"]
max_msgs = 1000
fsync = "never"

[[schedules]]
name = "tick"
topic = "clock.tick"
payload = "tock"
every_ms = 100
headers = { source = "cron", Content-Type = "text/plain" }

[[schedules]]
name = "daily"
topic = "reports.daily"
cron = "0 6 * * MON-FRI"
)toml"));

  const Printed first = PrintConfig(file);
  ASSERT_EQ(first.code, 0) << first.out;
  for (const char* expected :
       {"\nstats_top_topics = 7\n", "\n[[plugin_libraries]]\n",
        "\nrequired = false\n", "\n[[routes]]\n", "\n[[routes.chain]]\n",
        "\n\"set.tenant\" = \"eu\"\n", "\n[subscriptions]\n",
        "\nplugins = [ \"header_filter\", \"sample\" ]\n", "\n[[streams]]\n",
        "\nname = \"orders\"\n", "\nfsync = \"never\"\n", "\n[[schedules]]\n",
        "\nevery_ms = 100\n", "\ncron = \"0 6 * * MON-FRI\"\n",
        "\n[schedules.headers]\nsource = \"cron\"\n"
        "Content-Type = \"text/plain\"\n"}) {
    EXPECT_TRUE(absl::StrContains(first.out, expected))
        << "missing " << expected << " in\n" << first.out;
  }

  // Given back with --config, it prints the same and is the same config.
  const std::string printed = WriteFile("printed.toml", first.out);
  const Printed second = PrintConfig(printed);
  ASSERT_EQ(second.code, 0) << second.out;
  EXPECT_EQ(second.out, first.out);
  absl::StatusOr<SiftdConfig> original = Load(file);
  ASSERT_TRUE(original.ok()) << original.status();
  absl::StatusOr<SiftdConfig> reloaded = Load(printed);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_TRUE(*reloaded == *original) << first.out;
  EXPECT_EQ(reloaded->streams.size(), 1u);
  EXPECT_EQ(reloaded->schedules.size(), 2u);
  EXPECT_EQ(reloaded->plugins.routes.size(), 1u);

  // siftd runs with the printed file: its stream is there, and its schedule
  // publishes with its headers.
  auto siftd = StartSiftd({"--config=" + printed});
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  absl::StatusOr<std::vector<StreamInfo>> streams =
      client->ListStreams(kTimeout);
  ASSERT_TRUE(streams.ok()) << streams.status();
  ASSERT_EQ(streams->size(), 1u);
  EXPECT_EQ((*streams)[0].config.name, "orders");
  EXPECT_TRUE((*streams)[0].from_config);
  auto sub = client->Subscribe("clock.tick");
  ASSERT_TRUE(sub.ok()) << sub.status();
  absl::StatusOr<Message> tick = (*sub)->Next(kTimeout);
  ASSERT_TRUE(tick.ok()) << tick.status();
  EXPECT_EQ(tick->payload(), "tock");
  EXPECT_EQ(tick->header("source"), "cron");
}

TEST(PrintConfigTest, AnInvalidSectionIsAnError) {
  const std::string file = WriteFile("no_data_dir.toml", R"toml(
[[streams]]
name = "orders"
subjects = ["orders.>"]
)toml");
  const Printed printed = PrintConfig(file);
  EXPECT_EQ(printed.code, 2);
  EXPECT_EQ(printed.out,
            absl::StrCat("siftd: ", file,
                         ": [[streams]] needs data_dir: set data_dir (or "
                         "--data_dir=DIR) to where siftd may keep them\n"));
}

}  // namespace
}  // namespace sift::test
