// Tests of ParsePluginSettings (the config file's plugin sections and their
// errors) and PluginSet (registry, route chains, subscription chains, stats).
#include "broker/plugin/plugin_set.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "broker/plugin/chain.h"
#include "broker/plugin/message.h"
#include "broker/plugin/payload_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sift::plugin {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using Pairs = std::vector<std::pair<std::string, std::string>>;

constexpr char kSource[] = "siftd.toml";
constexpr char kExampleLibrary[] =
    "broker/plugin/examples/libsift_example_plugin.so";

absl::StatusOr<PluginSettings> Parse(std::string_view text) {
  return ParsePluginSettings(text, kSource);
}

// The error message of parsing `text` ("OK" if it parses).
std::string ParseError(std::string_view text) {
  absl::StatusOr<PluginSettings> s = Parse(text);
  if (s.ok()) return "OK";
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(s.status().message());
}

StageSpec Spec(std::string plugin, Pairs kv = {}) {
  return StageSpec{std::move(plugin), PluginConfig(std::move(kv))};
}

// ---- ParsePluginSettings ----

TEST(ParsePluginSettingsTest, FullExample) {
  absl::StatusOr<PluginSettings> s = Parse(R"(
# siftd's own settings are not for this parser.
listen = "tcp://*:4222"
[limits]
max_topic_length = 128

[[plugin_libraries]]
path = "/usr/lib/sift/libkeyword.so"

[[plugin_libraries]]
path = "optional.so"
required = false

[[routes]]
pattern = "orders.>"
[[routes.chain]]
plugin = "header_filter"
expr = "region == 'eu'"
[[routes.chain]]
plugin = "x"
count = 3
share = 0.25
strict = true
off = false
keys = ["trace-id", "debug", "x y"]
empty = []
negative = -7

[[routes]]
pattern = "*.audit"

[subscriptions]
plugins = ["header_filter", "dedup"]
descriptor_sets = ["/etc/sift/shop.pb", "/etc/sift/other.pb"]
)");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->libraries.size(), 2u);
  EXPECT_EQ(s->libraries[0].path, "/usr/lib/sift/libkeyword.so");
  EXPECT_TRUE(s->libraries[0].required);
  EXPECT_EQ(s->libraries[1].path, "optional.so");
  EXPECT_FALSE(s->libraries[1].required);

  ASSERT_EQ(s->routes.size(), 2u);
  EXPECT_EQ(s->routes[0].pattern, "orders.>");
  ASSERT_EQ(s->routes[0].chain.size(), 2u);
  EXPECT_EQ(s->routes[0].chain[0].plugin, "header_filter");
  EXPECT_EQ(s->routes[0].chain[0].config.entries(),
            (Pairs{{"expr", "region == 'eu'"}}));
  const StageSpec& x = s->routes[0].chain[1];
  EXPECT_EQ(x.plugin, "x");
  // Every value as text; compare by key (see SettingsKeepFileOrder).
  auto value = [&](std::string_view key) {
    const std::string* v = x.config.Find(key);
    return v == nullptr ? std::string("<absent>") : *v;
  };
  EXPECT_EQ(x.config.entries().size(), 7u);
  EXPECT_EQ(value("count"), "3");
  EXPECT_EQ(value("share"), "0.25");
  EXPECT_EQ(value("strict"), "true");
  EXPECT_EQ(value("off"), "false");
  EXPECT_EQ(value("keys"), "trace-id,debug,x y");
  EXPECT_EQ(value("empty"), "");
  EXPECT_EQ(value("negative"), "-7");
  EXPECT_EQ(value("plugin"), "<absent>");
  EXPECT_EQ(s->routes[1].pattern, "*.audit");
  EXPECT_THAT(s->routes[1].chain, IsEmpty());

  EXPECT_THAT(s->subscription_plugins, ElementsAre("header_filter", "dedup"));
  EXPECT_THAT(s->subscription_descriptor_sets,
              ElementsAre("/etc/sift/shop.pb", "/etc/sift/other.pb"));
}

TEST(ParsePluginSettingsTest, NoPluginSectionsGiveTheDefaults) {
  absl::StatusOr<PluginSettings> s = Parse("listen = \"x\"\n[other]\na = 1\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->libraries, IsEmpty());
  EXPECT_THAT(s->routes, IsEmpty());
  EXPECT_EQ(s->subscription_plugins, PluginSettings().subscription_plugins);
  EXPECT_THAT(s->subscription_descriptor_sets, IsEmpty());
  EXPECT_TRUE(Parse("").ok());
}

TEST(ParsePluginSettingsTest, EmptySubscriptionPluginsAllowsNone) {
  absl::StatusOr<PluginSettings> s = Parse("[subscriptions]\nplugins = []\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->subscription_plugins, IsEmpty());
}

// header_set's settings are named set.<key>; quoted, such a key is one
// setting.
TEST(ParsePluginSettingsTest, QuotedDottedKeyIsOneSetting) {
  absl::StatusOr<PluginSettings> s = Parse(R"([[routes]]
pattern = "a.>"
[[routes.chain]]
plugin = "header_set"
"set.tenant" = "eu"
)");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->routes[0].chain.size(), 1u);
  EXPECT_EQ(s->routes[0].chain[0].config.entries(),
            (Pairs{{"set.tenant", "eu"}}));
}

// header_edit.h documents header_set's settings as `set.tenant = eu`, but
// in TOML an unquoted dotted key is a nested table, which ParseChain refuses
// ("setting \"set\" must be a string, ..."): the natural way to write a
// header_set entry fails, and the error does not say to quote the key.
// BUG (plugin_set.cc ParseChain): nested tables are not flattened into
// dotted setting names.
TEST(ParsePluginSettingsTest, UnquotedDottedKeyIsOneSetting) {
  absl::StatusOr<PluginSettings> s = Parse(R"([[routes]]
pattern = "a.>"
[[routes.chain]]
plugin = "header_set"
set.tenant = "eu"
)");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->routes[0].chain.size(), 1u);
  EXPECT_EQ(s->routes[0].chain[0].config.entries(),
            (Pairs{{"set.tenant", "eu"}}));
}

// A dotted key and the same name quoted would be one setting with two
// values (and --print-config could not write them back): refused.
TEST(ParsePluginSettingsTest, SettingGivenTwiceIsRefused) {
  EXPECT_EQ(ParseError(R"([[routes]]
pattern = "a.>"
[[routes.chain]]
plugin = "header_set"
set.tenant = "eu"
"set.tenant" = "us"
)"),
            "siftd.toml:6: route 1: setting \"set.tenant\" is given twice");
}

// PluginSettingsToToml writes what ParsePluginSettings reads back as the
// same settings (siftd --print-config; the whole file in
// broker/config/siftd_config_test).
TEST(PluginSettingsToTomlTest, RoundTrips) {
  absl::StatusOr<PluginSettings> s = Parse(R"([[plugin_libraries]]
path = "/x/lib.so"
required = false
[[routes]]
pattern = "a.>"
[[routes.chain]]
plugin = "header_set"
"set.zone" = "1"
set.app = 2
"" = "empty key"
[[routes.chain]]
plugin = "sample"
[[message_types]]
pattern = "a.>"
type = "x.Y"
descriptor_set = "/x.pb"
[subscriptions]
plugins = []
)");
  ASSERT_TRUE(s.ok()) << s.status();
  const std::string toml = PluginSettingsToToml(*s);
  absl::StatusOr<PluginSettings> again = Parse(toml);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << toml;
  EXPECT_TRUE(*again == *s) << toml;
  EXPECT_EQ(again->routes[0].chain[0].config.entries(),
            (Pairs{{"set.zone", "1"}, {"set.app", "2"}, {"", "empty key"}}));
  EXPECT_TRUE(again->subscription_plugins.empty());
  PluginSettings other = *again;
  other.routes[0].chain[0].config.Add("x", "y");
  EXPECT_FALSE(other == *s);
}

// header_set documents that its set.<key> entries apply in order
// (header_edit.h: "in order (PluginConfig keeps them ordered)"), and
// PluginConfig is ordered, but toml++ tables are std::maps: a chain entry's
// settings reach the plugin sorted by key, not in the file's order.
// BUG (plugin_set.cc ParseChain): iterates the toml::table, losing file order.
TEST(ParsePluginSettingsTest, SettingsKeepFileOrder) {
  absl::StatusOr<PluginSettings> s = Parse(R"([[routes]]
pattern = "a.>"
[[routes.chain]]
plugin = "header_set"
"set.zone" = "1"
"set.app" = "2"
)");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->routes[0].chain.size(), 1u);
  EXPECT_EQ(s->routes[0].chain[0].config.entries(),
            (Pairs{{"set.zone", "1"}, {"set.app", "2"}}));
}

// Floats reach plugins as text through absl::StrCat(double), which keeps 6
// significant digits: rate_per_second = 1234567.5 arrives as "1.23457e+06"
// (1234570), probability = 0.9999999 as "1" (keep everything).
// BUG (plugin_set.cc ValueText): floats lose precision; they need a
// round-trip format (e.g. %.17g, or the value's source text).
TEST(ParsePluginSettingsTest, FloatSettingsKeepTheirPrecision) {
  absl::StatusOr<PluginSettings> s = Parse(R"([[routes]]
pattern = "a.>"
[[routes.chain]]
plugin = "x"
rate_per_second = 1234567.5
probability = 0.9999999
)");
  ASSERT_TRUE(s.ok()) << s.status();
  const PluginConfig& config = s->routes[0].chain[0].config;
  ASSERT_NE(config.Find("rate_per_second"), nullptr);
  EXPECT_DOUBLE_EQ(*config.GetDouble("rate_per_second", 0), 1234567.5)
      << *config.Find("rate_per_second");
  EXPECT_DOUBLE_EQ(*config.GetDouble("probability", 0), 0.9999999)
      << *config.Find("probability");
}

TEST(ParsePluginSettingsTest, SyntaxErrorNamesLineAndColumn) {
  EXPECT_THAT(ParseError("[[routes]]\npattern = \n"),
              StartsWith("siftd.toml:2:"));
  EXPECT_THAT(ParseError("[[routes]]\npattern = \n"),
              HasSubstr(": syntax error: "));
  EXPECT_THAT(ParseError("a = 1\n\n  [[routes]\n"),
              StartsWith("siftd.toml:3:"));
  // line:col, both numbers.
  std::string e = ParseError("x = \"unterminated\n");
  EXPECT_THAT(e, StartsWith("siftd.toml:1:"));
  EXPECT_THAT(e.substr(strlen("siftd.toml:1:")),
              ::testing::MatchesRegex("[0-9]+: syntax error: .*"));
}

TEST(ParsePluginSettingsTest, LibraryErrors) {
  EXPECT_EQ(ParseError("[[plugin_libraries]]\npath = \"a.so\"\n"
                       "requierd = true\n"),
            "siftd.toml:3: [[plugin_libraries]]: unknown or mistyped key "
            "\"requierd\" (path = \"FILE\", required = true|false)");
  EXPECT_EQ(ParseError("[[plugin_libraries]]\npath = \"a.so\"\n"
                       "required = \"no\"\n"),
            "siftd.toml:3: [[plugin_libraries]]: unknown or mistyped key "
            "\"required\" (path = \"FILE\", required = true|false)");
  EXPECT_EQ(ParseError("[[plugin_libraries]]\npath = 5\n"),
            "siftd.toml:2: [[plugin_libraries]]: unknown or mistyped key "
            "\"path\" (path = \"FILE\", required = true|false)\n"
            "siftd.toml:1: [[plugin_libraries]] entry needs path = \"FILE\"");
  EXPECT_EQ(ParseError("\n[[plugin_libraries]]\nrequired = false\n"),
            "siftd.toml:2: [[plugin_libraries]] entry needs path = \"FILE\"");
  EXPECT_EQ(ParseError("plugin_libraries = \"a.so\"\n"),
            "siftd.toml:1: plugin_libraries must be an array of tables "
            "([[plugin_libraries]])");
  EXPECT_EQ(ParseError("plugin_libraries = [\"a.so\"]\n"),
            "siftd.toml:1: each [[plugin_libraries]] entry must be a table");
}

TEST(ParsePluginSettingsTest, RouteErrors) {
  EXPECT_EQ(ParseError("[[routes]]\npattern = \"a.>\"\npatern = \"b\"\n"),
            "siftd.toml:3: route 1: unknown or mistyped key \"patern\" "
            "(pattern = \"P\", [[routes.chain]])");
  EXPECT_EQ(ParseError("[[routes]]\npattern = \"a.>\"\n\n"
                       "[[routes]]\n# no pattern\n"
                       "[[routes.chain]]\nplugin = \"sample\"\n"),
            "siftd.toml:4: route 2 needs pattern = \"P\"");
  EXPECT_EQ(ParseError("[[routes]]\npattern = 7\n"),
            "siftd.toml:2: route 1: unknown or mistyped key \"pattern\" "
            "(pattern = \"P\", [[routes.chain]])\n"
            "siftd.toml:1: route 1 needs pattern = \"P\"");
  std::string invalid = ParseError("\n\n[[routes]]\npattern = \"a.>.b\"\n");
  EXPECT_THAT(invalid, StartsWith("siftd.toml:3: route 1: "));
  EXPECT_EQ(
      invalid,
      absl::StrCat("siftd.toml:3: route 1: ",
                   topic::ValidatePattern("a.>.b", topic::Limits{}).message()));
  EXPECT_THAT(ParseError("[[routes]]\npattern = \"a..b\"\n"),
              StartsWith("siftd.toml:1: route 1: "));
  EXPECT_EQ(ParseError("routes = 1\n"),
            "siftd.toml:1: routes must be an array of tables ([[routes]])");
  EXPECT_EQ(ParseError("routes = [1]\n"),
            "siftd.toml:1: each [[routes]] entry must be a table");
}

TEST(ParsePluginSettingsTest, ChainErrors) {
  EXPECT_EQ(ParseError("[[routes]]\npattern = \"a.>\"\n"
                       "[[routes.chain]]\nplugin = \"sample\"\n"
                       "[[routes.chain]]\nevery = 2\n"),
            "siftd.toml:5: route 1: chain entry needs plugin = \"NAME\"");
  EXPECT_EQ(ParseError("[[routes]]\npattern = \"a.>\"\n"
                       "[[routes.chain]]\nplugin = \"sample\"\n"
                       "every = [1, 2]\n"),
            "siftd.toml:5: route 1: setting \"every\" must be a string, "
            "number, boolean or array of strings");
  EXPECT_EQ(ParseError("[[routes]]\npattern = \"a.>\"\n"
                       "[[routes.chain]]\nplugin = \"sample\"\n"
                       "when = 1979-05-27\n"),
            "siftd.toml:5: route 1: setting \"when\" must be a string, "
            "number, boolean or array of strings");
  // A nested table is flattened into dotted setting names (nested.x), so
  // it parses; an array of tables does not.
  EXPECT_EQ(ParseError("[[routes]]\npattern = \"a.>\"\n"
                       "[[routes.chain]]\nplugin = \"sample\"\n"
                       "[routes.chain.nested]\nx = 1\n"),
            "OK");
  EXPECT_EQ(ParseError("[[routes]]\npattern = \"a.>\"\n"
                       "[[routes.chain]]\nplugin = \"sample\"\n"
                       "every = [{a = 1}]\n"),
            "siftd.toml:5: route 1: setting \"every\" must be a string, "
            "number, boolean or array of strings");
  EXPECT_EQ(ParseError("[[routes]]\npattern = \"a.>\"\nchain = \"sample\"\n"),
            "siftd.toml:3: route 1: chain must be an array of tables "
            "([[routes.chain]])");
  EXPECT_EQ(ParseError("[[routes]]\npattern = \"a.>\"\nchain = [\"sample\"]\n"),
            "siftd.toml:3: route 1: each chain entry must be a table");
  EXPECT_EQ(ParseError("[[routes]]\npattern = \"a.>\"\n"
                       "[[routes.chain]]\nplugin = \"\"\n"),
            "siftd.toml:3: route 1: chain entry needs plugin = \"NAME\"");
}

TEST(ParsePluginSettingsTest, SubscriptionErrors) {
  EXPECT_EQ(
      ParseError("[subscriptions]\nplugins = [\"a\"]\nplugin = [\"b\"]\n"),
      "siftd.toml:3: [subscriptions]: unknown or mistyped key \"plugin\" "
      "(plugins = [...], descriptor_sets = [...], arrays of strings)");
  EXPECT_EQ(ParseError("[subscriptions]\nplugins = \"header_filter\"\n"),
            "siftd.toml:2: [subscriptions]: unknown or mistyped key "
            "\"plugins\" (plugins = [...], descriptor_sets = [...], arrays "
            "of strings)");
  EXPECT_EQ(ParseError("[subscriptions]\ndescriptor_sets = [\"a\", 1]\n"),
            "siftd.toml:2: [subscriptions]: unknown or mistyped key "
            "\"descriptor_sets\" (plugins = [...], descriptor_sets = [...], "
            "arrays of strings)");
  EXPECT_EQ(ParseError("subscriptions = 1\n"),
            "siftd.toml:1: subscriptions must be a table ([subscriptions])");
}

TEST(ParsePluginSettingsTest, EveryProblemIsReported) {
  std::string e = ParseError(R"([[plugin_libraries]]
pth = "a.so"

[[routes]]
pattern = "a.>"
[[routes.chain]]
every = 2

[subscriptions]
plugins = 3
)");
  EXPECT_THAT(e, HasSubstr("siftd.toml:2: [[plugin_libraries]]: unknown"));
  EXPECT_THAT(e, HasSubstr("siftd.toml:1: [[plugin_libraries]] entry needs"));
  EXPECT_THAT(e, HasSubstr("siftd.toml:6: route 1: chain entry needs"));
  EXPECT_THAT(e, HasSubstr("siftd.toml:10: [subscriptions]: unknown"));
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 3);
}

// ---- PluginSet::Build ----

PluginSettings Settings(std::string_view toml) {
  absl::StatusOr<PluginSettings> s = Parse(toml);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : PluginSettings();
}

std::unique_ptr<PluginSet> BuildOk(
    const PluginSettings& settings,
    std::vector<std::string>* warnings = nullptr) {
  auto set = PluginSet::Build(settings, topic::Limits{}, warnings);
  EXPECT_TRUE(set.ok()) << set.status();
  return set.ok() ? *std::move(set) : nullptr;
}

CallContext Now() {
  CallContext c;
  c.now = absl::FromUnixSeconds(1700000000);
  return c;
}

// Runs `chain` on a message on `topic` with `headers`; returns how many
// messages came out (failures are expected to be none).
size_t RunCount(Chain& chain, std::string_view topic,
                std::vector<HeaderField> headers = {}) {
  std::vector<Message> out;
  std::vector<Chain::Failure> failures;
  chain.Run(Message(topic, "", std::move(headers), "{}"), Now(), &out,
            &failures);
  EXPECT_THAT(failures, IsEmpty());
  return out.size();
}

TEST(PluginSetTest, RegistersEveryBuiltIn) {
  std::unique_ptr<PluginSet> set = BuildOk(PluginSettings());
  ASSERT_NE(set, nullptr);
  EXPECT_THAT(set->registry().FilterNames(),
              ElementsAre("dedup", "header_filter", "lua_filter",
                          "payload_filter", "rate_limit", "sample"));
  EXPECT_THAT(
      set->registry().TransformNames(),
      ElementsAre("enrich", "header_remove", "header_set", "json_to_proto",
                  "lua_transform", "proto_to_json", "redact", "topic_map"));
  EXPECT_FALSE(set->has_routes());
  EXPECT_EQ(set->route_count(), 0u);
  EXPECT_EQ(set->RouteFor("a.b"), nullptr);
  EXPECT_THAT(set->Stats(), IsEmpty());
}

TEST(PluginSetTest, RouteForPicksTheFirstMatchingRoute) {
  std::unique_ptr<PluginSet> set = BuildOk(Settings(R"(
[[routes]]
pattern = "orders.>"
[[routes.chain]]
plugin = "sample"
every = 1

[[routes]]
pattern = "orders.eu.>"
[[routes.chain]]
plugin = "sample"
every = 1
[[routes.chain]]
plugin = "header_set"
"set.region" = "eu"

[[routes]]
pattern = "*.audit"
[[routes.chain]]
plugin = "header_remove"
keys = "a, b"
[[routes.chain]]
plugin = "header_filter"
expr = "a == '1'"
[[routes.chain]]
plugin = "dedup"
)"));
  ASSERT_NE(set, nullptr);
  EXPECT_TRUE(set->has_routes());
  EXPECT_EQ(set->route_count(), 3u);
  Chain* orders = set->RouteFor("orders.eu.1");  // orders.> comes first
  ASSERT_NE(orders, nullptr);
  EXPECT_EQ(orders->size(), 1u);
  EXPECT_EQ(set->RouteFor("orders.us"), orders);
  EXPECT_EQ(set->RouteFor("orders.audit"), orders);
  Chain* audit = set->RouteFor("users.audit");
  ASSERT_NE(audit, nullptr);
  EXPECT_EQ(audit->size(), 3u);
  EXPECT_EQ(set->RouteFor("orders"), nullptr);
  EXPECT_EQ(set->RouteFor("users.audit.x"), nullptr);
  // The chains run the configured plugins.
  EXPECT_EQ(RunCount(*audit, "users.audit", {{"a", "1"}}), 0u);  // removed
  EXPECT_EQ(RunCount(*orders, "orders.us"), 1u);
}

TEST(PluginSetTest, BadRouteSettingFailsBuildNamingTheRoute) {
  PluginSettings settings = Settings(R"(
[[routes]]
pattern = "a.>"
[[routes.chain]]
plugin = "sample"
every = 1

[[routes]]
pattern = "b.>"
[[routes.chain]]
plugin = "header_set"
"set.x" = "1"
[[routes.chain]]
plugin = "sample"
every = "often"
)");
  auto set = PluginSet::Build(settings, topic::Limits{}, nullptr);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(set.status().message()),
              StartsWith("route 2 (b.>) plugin 2 (sample): "));
  EXPECT_THAT(std::string(set.status().message()), HasSubstr("every"));

  settings = Settings(R"(
[[routes]]
pattern = "a.>"
[[routes.chain]]
plugin = "no_such_plugin"
)");
  set = PluginSet::Build(settings, topic::Limits{}, nullptr);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(set.status().message()),
              StartsWith("route 1 (a.>) plugin 1 (no_such_plugin): no plugin "
                         "named \"no_such_plugin\""));
}

TEST(PluginSetTest, TopicMapUsesTheGivenTopicLimits) {
  PluginSettings settings = Settings(R"(
[[routes]]
pattern = "a.>"
[[routes.chain]]
plugin = "topic_map"
from = "a.>"
to = "bbbbbbbbbbbb.$1"
)");
  topic::Limits small;
  small.max_length = 8;
  auto set = PluginSet::Build(settings, small, nullptr);
  ASSERT_FALSE(set.ok());
  EXPECT_THAT(std::string(set.status().message()),
              StartsWith("route 1 (a.>) plugin 1 (topic_map): "));
  EXPECT_TRUE(PluginSet::Build(settings, topic::Limits{}, nullptr).ok());
}

TEST(PluginSetTest, MissingRequiredLibraryFailsBuild) {
  PluginSettings settings;
  settings.libraries.push_back({"broker/plugin/examples/no_such.so", true});
  std::vector<std::string> warnings;
  auto set = PluginSet::Build(settings, topic::Limits{}, &warnings);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(set.status().message()),
              StartsWith("plugin library broker/plugin/examples/no_such.so: "));
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(PluginSetTest, MissingOptionalLibraryIsAWarning) {
  PluginSettings settings;
  settings.libraries.push_back({"broker/plugin/examples/no_such.so", false});
  std::vector<std::string> warnings;
  std::unique_ptr<PluginSet> set = BuildOk(settings, &warnings);
  ASSERT_NE(set, nullptr);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0],
              StartsWith("plugin library broker/plugin/examples/no_such.so: "));
  EXPECT_THAT(warnings[0],
              HasSubstr("(required = false: starting without it)"));
  // Null warnings are allowed.
  EXPECT_NE(BuildOk(settings, nullptr), nullptr);
}

TEST(PluginSetTest, LibraryWithBothKindsRegistersBothNames) {
  PluginSettings settings = Settings(absl::StrCat(
      "[[plugin_libraries]]\npath = \"", kExampleLibrary, "\"\n", R"(
[[routes]]
pattern = "a.>"
[[routes.chain]]
plugin = "example_filter"
keyword = "secret"
[[routes.chain]]
plugin = "example_transform"
uppercase = true
)"));
  std::unique_ptr<PluginSet> set = BuildOk(settings);
  ASSERT_NE(set, nullptr);
  EXPECT_TRUE(set->registry().FindFilter("example_filter").ok());
  EXPECT_TRUE(set->registry().FindTransform("example_transform").ok());
  EXPECT_FALSE(set->registry().Find("example").ok());
  Chain* chain = set->RouteFor("a.b");
  ASSERT_NE(chain, nullptr);
  EXPECT_EQ(chain->size(), 2u);

  // Loading it twice collides on the names: an error for a required copy.
  settings.libraries.push_back({kExampleLibrary, true});
  auto twice = PluginSet::Build(settings, topic::Limits{}, nullptr);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(twice.status().message()),
              StartsWith(absl::StrCat("plugin library ", kExampleLibrary)));
}

// ---- PluginSet::SubscriptionChain ----

TEST(PluginSetTest, SubscriptionFilterErrorIsTheExpressions) {
  std::unique_ptr<PluginSet> set = BuildOk(PluginSettings());
  ASSERT_NE(set, nullptr);
  auto chain = set->SubscriptionChain("region == ", {});
  ASSERT_FALSE(chain.ok());
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(chain.status().message()),
              StartsWith("filter: at position "));
}

TEST(PluginSetTest, SubscriptionChainIsFilterThenStages) {
  std::unique_ptr<PluginSet> set = BuildOk(PluginSettings());
  ASSERT_NE(set, nullptr);
  auto chain = set->SubscriptionChain(
      "region == 'eu'", {Spec("header_set", {{"set.seen", "1"}})});
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_EQ((*chain)->size(), 2u);
  EXPECT_EQ(RunCount(**chain, "a", {{"region", "eu"}}), 1u);
  EXPECT_EQ(RunCount(**chain, "a", {{"region", "us"}}), 0u);

  auto no_filter =
      set->SubscriptionChain("", {Spec("sample", {{"every", "2"}})});
  ASSERT_TRUE(no_filter.ok()) << no_filter.status();
  EXPECT_EQ((*no_filter)->size(), 1u);
  auto empty = set->SubscriptionChain("", {});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE((*empty)->empty());
}

TEST(PluginSetTest, SubscriptionPluginMustBeAllowed) {
  PluginSettings settings = Settings(R"(
[subscriptions]
plugins = ["sample", "lua_filter"]
)");
  std::unique_ptr<PluginSet> set = BuildOk(settings);
  ASSERT_NE(set, nullptr);
  auto chain = set->SubscriptionChain("", {Spec("dedup")});
  ASSERT_FALSE(chain.ok());
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(chain.status().message(),
            "plugin \"dedup\" is not allowed in subscriptions (siftd's "
            "[subscriptions] plugins: sample, lua_filter)");
  // The filter needs header_filter, which is not listed here.
  chain = set->SubscriptionChain("a == 1", {Spec("sample", {{"every", "1"}})});
  ASSERT_FALSE(chain.ok());
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(chain.status().message()),
              HasSubstr("\"header_filter\""));
  // Listed plugins get the factory's errors, naming the stage.
  chain = set->SubscriptionChain("", {Spec("sample", {{"every", "x"}})});
  ASSERT_FALSE(chain.ok());
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(chain.status().message()),
              StartsWith("subscription plugin 1 (sample): "));
  EXPECT_TRUE(
      set->SubscriptionChain("", {Spec("sample", {{"every", "1"}})}).ok());
}

TEST(PluginSetTest, SubscriptionDescriptorSetMustBeListed) {
  PluginSettings settings;
  settings.subscription_descriptor_sets = {testing::kOrderSet};
  std::unique_ptr<PluginSet> set = BuildOk(settings);
  ASSERT_NE(set, nullptr);

  auto chain = set->SubscriptionChain(
      "", {Spec("proto_to_json",
                {{"type", "shop.Order"}, {"descriptor_set", "/etc/passwd"}})});
  ASSERT_FALSE(chain.ok());
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(chain.status().message(),
            "descriptor set \"/etc/passwd\" is not listed in siftd's "
            "[subscriptions] descriptor_sets");

  // Every one of a comma-separated list must be listed.
  chain = set->SubscriptionChain(
      "", {Spec("proto_to_json",
                {{"type", "shop.Order"},
                 {"descriptor_set",
                  absl::StrCat(testing::kOrderSet, ", other.pb")}})});
  ASSERT_FALSE(chain.ok());
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(chain.status().message()), HasSubstr("\"other.pb\""));

  chain = set->SubscriptionChain(
      "", {Spec("proto_to_json", {{"type", "shop.Order"},
                                  {"descriptor_set", testing::kOrderSet}})});
  EXPECT_TRUE(chain.ok()) << chain.status();
}

// ---- Stats ----

const PluginStatsRow* Row(const std::vector<PluginStatsRow>& rows,
                          std::string_view plugin, std::string_view chain) {
  for (const PluginStatsRow& r : rows) {
    if (r.plugin == plugin && r.chain == chain) return &r;
  }
  return nullptr;
}

TEST(PluginSetTest, StatsRowsForRouteStagesAndSubscriptionPlugins) {
  std::unique_ptr<PluginSet> set = BuildOk(Settings(R"(
[[routes]]
pattern = "a.>"
[[routes.chain]]
plugin = "header_set"
"set.x" = "1"
[[routes.chain]]
plugin = "sample"
every = 2

[[routes]]
pattern = "b.>"
[[routes.chain]]
plugin = "sample"
every = 1
)"));
  ASSERT_NE(set, nullptr);
  std::vector<PluginStatsRow> rows = set->Stats();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].plugin, "header_set");
  EXPECT_EQ(rows[0].chain, "route a.> #1");
  EXPECT_EQ(rows[1].plugin, "sample");
  EXPECT_EQ(rows[1].chain, "route a.> #2");
  EXPECT_EQ(rows[2].plugin, "sample");
  EXPECT_EQ(rows[2].chain, "route b.> #1");
  for (const PluginStatsRow& r : rows) EXPECT_EQ(r.counters.calls, 0u);

  Chain* a = set->RouteFor("a.1");
  Chain* b = set->RouteFor("b.1");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  size_t passed = 0;
  for (int i = 0; i < 4; ++i) passed += RunCount(*a, "a.1");
  EXPECT_EQ(passed, 2u);
  RunCount(*b, "b.1");

  // Two subscriptions: their header_filter and sample stages add up.
  auto s1 =
      set->SubscriptionChain("x == '1'", {Spec("sample", {{"every", "1"}})});
  auto s2 =
      set->SubscriptionChain("x == '2'", {Spec("sample", {{"every", "1"}})});
  ASSERT_TRUE(s1.ok()) << s1.status();
  ASSERT_TRUE(s2.ok()) << s2.status();
  RunCount(**s1, "c", {{"x", "1"}});
  RunCount(**s1, "c", {{"x", "2"}});
  RunCount(**s2, "c", {{"x", "2"}});

  rows = set->Stats();
  ASSERT_EQ(rows.size(), 5u);
  // Route stages first, in config order.
  EXPECT_EQ(rows[0].chain, "route a.> #1");
  EXPECT_EQ(rows[0].counters.calls, 4u);
  EXPECT_EQ(rows[0].counters.passes, 4u);
  EXPECT_EQ(rows[1].chain, "route a.> #2");
  EXPECT_EQ(rows[1].counters.calls, 4u);
  EXPECT_EQ(rows[1].counters.passes, 2u);
  EXPECT_EQ(rows[1].counters.drops, 2u);
  EXPECT_GT(rows[1].counters.nanos, 0u);
  EXPECT_EQ(rows[2].chain, "route b.> #1");
  EXPECT_EQ(rows[2].counters.calls, 1u);

  const PluginStatsRow* hf = Row(rows, "header_filter", "subscriptions");
  ASSERT_NE(hf, nullptr);
  EXPECT_EQ(hf->counters.calls, 3u);
  EXPECT_EQ(hf->counters.passes, 2u);
  EXPECT_EQ(hf->counters.drops, 1u);
  const PluginStatsRow* sample = Row(rows, "sample", "subscriptions");
  ASSERT_NE(sample, nullptr);
  EXPECT_EQ(sample->counters.calls, 2u);
  EXPECT_EQ(sample->counters.passes, 2u);
  EXPECT_EQ(rows[3].chain, "subscriptions");
  EXPECT_EQ(rows[4].chain, "subscriptions");

  // The counters outlive the chains.
  s1->reset();
  s2->reset();
  EXPECT_EQ(Row(set->Stats(), "header_filter", "subscriptions")->counters.calls,
            3u);
}

}  // namespace
}  // namespace sift::plugin
