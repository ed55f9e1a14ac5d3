// Plugins through a real siftd over real sockets: route chains from the
// config file ([[routes]]), the filters and plugins a SUB asks for, payload
// plugins with descriptor sets, a plugin library loaded with dlopen, Lua with
// its instruction budget, dead letters, reloads (RELOAD, SIGHUP, a bad file,
// and under traffic), the STATS rows, and bad input that gets clear errors
// while other clients' traffic goes on. Each TEST says what it shows; the
// config sections are described in broker/plugin/plugin_set.h.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/protocol/codec.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"
#include "tests/harness.h"
#include "tests/raw_dealer.h"
#include "tests/siftd_process.h"
#include "tests/test_util.h"

namespace sift::test {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(10);

using Pairs = std::vector<std::pair<std::string, std::string>>;

// ---- Files: runfiles, configs ----

// The absolute path of a runfile (`rel` from the workspace root).
std::string Runfile(std::string_view rel) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", ws ? ws : "sift", "/",
                      std::string(rel));
}

const std::string& ExamplePlugin() {
  static const std::string* path = new std::string(
      Runfile("broker/plugin/examples/libsift_example_plugin.so"));
  return *path;
}
std::string BadPlugin(std::string_view kind) {
  return Runfile(absl::StrCat("broker/plugin/examples/libsift_bad_",
                              std::string(kind), "_plugin.so"));
}
const std::string& OrderSet() {
  static const std::string* path =
      new std::string(Runfile("broker/plugin/testdata/order.pb"));
  return *path;
}
const std::string& EnvelopeSet() {
  static const std::string* path =
      new std::string(Runfile("broker/plugin/testdata/envelope.pb"));
  return *path;
}

// Replaces `path` with `text` at once (a temporary file renamed over it), so
// a reload never reads half a file.
void WriteFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    ASSERT_TRUE(out.good()) << tmp;
  }
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0) << path;
}

std::string ConfigPath(std::string_view name) {
  return absl::StrCat(TestTmpDir(), "/", std::string(name), ".toml");
}

// Starts siftd on `toml`, written to <tmp>/<name>.toml. Null (and a test
// failure) if it does not start.
std::unique_ptr<SiftdProcess> StartWithConfig(std::string_view name,
                                              const std::string& toml) {
  const std::string path = ConfigPath(name);
  WriteFile(path, toml);
  return StartSiftd({absl::StrCat("--config=", path)});
}

// ---- Messages ----

// A received message, copied.
struct Got {
  std::string topic;
  std::string payload;
  Pairs headers;

  // The first header named `key`, or "<none>".
  std::string Header(std::string_view key) const {
    for (const auto& [k, v] : headers) {
      if (k == key) return v;
    }
    return "<none>";
  }
};

Got Copy(const Message& m) {
  Got g{std::string(m.topic()), std::string(m.payload()), {}};
  for (const auto& [k, v] : m.headers()) g.headers.emplace_back(k, v);
  return g;
}

// What `sub` receives up to and including the first message whose payload
// is `last` (kTimeout per message; a failure if it never comes).
std::vector<Got> Until(Subscription& sub, std::string_view last) {
  std::vector<Got> got;
  for (int i = 0; i < 100000; ++i) {
    absl::StatusOr<Message> m = sub.Next(kTimeout);
    if (!m.ok()) {
      ADD_FAILURE() << "waiting on " << sub.pattern() << " for \"" << last
                    << "\" after " << got.size() << " messages: " << m.status();
      break;
    }
    got.push_back(Copy(*m));
    if (m->payload() == last) break;
  }
  return got;
}

std::vector<std::string> Payloads(const std::vector<Got>& got) {
  std::vector<std::string> out;
  for (const Got& g : got) out.push_back(g.payload);
  return out;
}

std::unique_ptr<Subscription> Sub(Client& client, std::string_view pattern,
                                  SubscribeOptions options = {}) {
  auto sub = client.Subscribe(pattern, std::move(options));
  EXPECT_TRUE(sub.ok()) << pattern << ": " << sub.status();
  return sub.ok() ? *std::move(sub) : nullptr;
}

SubscribeOptions WithFilter(std::string filter) {
  SubscribeOptions options;
  options.filter = std::move(filter);
  return options;
}

SubscribeOptions WithPlugins(std::vector<PluginSpec> plugins) {
  SubscribeOptions options;
  options.plugins = std::move(plugins);
  return options;
}

// ---- STATS ----

// The STATS row of `plugin` in `chain` ("route P #N" or "subscriptions").
std::optional<wire::PluginCount> Row(const wire::StatsReply& stats,
                                     std::string_view plugin,
                                     std::string_view chain) {
  for (const wire::PluginCount& p : stats.plugins()) {
    if (p.plugin() == plugin && p.chain() == chain) return p;
  }
  return std::nullopt;
}

void ExpectRow(const wire::StatsReply& stats, std::string_view plugin,
               std::string_view chain, uint64_t calls, uint64_t passes,
               uint64_t drops, uint64_t errors) {
  std::optional<wire::PluginCount> row = Row(stats, plugin, chain);
  ASSERT_TRUE(row.has_value()) << "no STATS row for " << plugin << " in \""
                               << chain << "\": " << stats.DebugString();
  EXPECT_EQ(row->calls(), calls) << plugin << " / " << chain;
  EXPECT_EQ(row->passes(), passes) << plugin << " / " << chain;
  EXPECT_EQ(row->drops(), drops) << plugin << " / " << chain;
  EXPECT_EQ(row->errors(), errors) << plugin << " / " << chain;
}

wire::StatsReply StatsOf(Client& client) {
  auto stats = client.Stats(kTimeout);
  EXPECT_TRUE(stats.ok()) << stats.status();
  return stats.ok() ? *stats : wire::StatsReply{};
}

// ---- Bystanders ----

// A publisher and a subscriber of their own topic, publishing numbered
// messages from a thread while a test does other things; Finish() checks
// that the subscriber got every one, once, in order. Not thread-safe: made,
// finished and destroyed by the test's thread.
class Bystander {
 public:
  Bystander(const std::string& endpoint, std::string topic)
      : topic_(std::move(topic)) {
    pub_ = Connect(endpoint);
    sub_ = Connect(endpoint);
    if (pub_ == nullptr || sub_ == nullptr) return;
    subscription_ = Sub(*sub_, topic_);
    if (subscription_ == nullptr) return;
    thread_ = std::thread([this] {
      for (int i = 0; i < 100000 && !stop_.load(); ++i) {
        if (!pub_->Publish(topic_, absl::StrCat(i)).ok()) {
          failed_.store(true);
          return;
        }
        sent_.store(i + 1);
        absl::SleepFor(absl::Microseconds(300));
      }
    });
  }
  ~Bystander() { Stop(); }

  // Stops publishing, then expects every message at the subscriber, once,
  // in order.
  void Finish() {
    Stop();
    ASSERT_NE(subscription_, nullptr);
    EXPECT_FALSE(failed_.load());
    SIFT_ASSERT_OK(pub_->PublishConfirmed(topic_, "end", kTimeout));
    const int sent = sent_.load();
    int next = 0;
    for (int i = 0; i <= sent; ++i) {
      absl::StatusOr<Message> m = subscription_->Next(kTimeout);
      ASSERT_TRUE(m.ok()) << topic_ << " after " << next << ": " << m.status();
      if (m->payload() == "end") break;
      ASSERT_EQ(m->payload(), absl::StrCat(next)) << topic_;
      ++next;
    }
    EXPECT_EQ(next, sent) << topic_;
    EXPECT_GT(sent, 0) << topic_;
  }

 private:
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

  const std::string topic_;
  std::unique_ptr<Client> pub_;
  std::unique_ptr<Client> sub_;
  std::unique_ptr<Subscription> subscription_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  std::atomic<int> sent_{0};
  std::thread thread_;
};

// Expects `status` to be the broker's ERROR `code` (as the client maps it)
// with `says` in its message.
void ExpectWireError(const absl::Status& status, absl::StatusCode canonical,
                     wire::ErrorCode code, std::string_view says) {
  EXPECT_EQ(status.code(), canonical) << status;
  EXPECT_EQ(protocol::WireCodeOf(status), code)
      << status << " (wire code " << wire::ErrorCode_Name(code) << " wanted)";
  EXPECT_TRUE(absl::StrContains(status.message(), std::string(says)))
      << status << " does not say \"" << says << "\"";
}

// shop.Order (broker/plugin/testdata/order.proto) {id: "o-1" quantity: 2
// customer {name: "Ann" tier: TIER_GOLD}}, encoded by hand: fields in
// number order, as protobuf serializes them.
const std::string& OrderBytes() {
  static const std::string* bytes = new std::string(
      "\x0a\x03o-1"  // 1: id
      "\x18\x02"     // 3: quantity (varint)
      "\x32\x07"     // 6: customer, 7 bytes
      "\x0a\x03"     //    1: name, 3 bytes
      "Ann"
      "\x10\x01",  //    2: tier = TIER_GOLD
      16);
  return *bytes;
}
constexpr char kOrderJson[] =
    R"({"id":"o-1","quantity":"2","customer":{"name":"Ann","tier":"TIER_GOLD"}})";

// ---- 1. Route chains ----

// A [[routes]] chain of header_filter, topic_map and header_set: matching
// messages pass, mapped to their new topic with the header set; the others
// are dropped and counted exactly under "filtered"; a topic the filter
// passes but topic_map's `from` does not match keeps its topic; topics
// outside the route's pattern route unchanged (the zero-copy path: a
// 100 KiB payload, no header added, no plugin called).
TEST(PluginsTest, RouteChainFiltersMapsAndSetsHeaders) {
  auto siftd = StartWithConfig("route_chain", R"toml(
[[routes]]
pattern = "orders.>"
[[routes.chain]]
plugin = "header_filter"
expr = "region == 'eu'"
[[routes.chain]]
plugin = "topic_map"
from = "orders.*"
to = "eu.orders.$1"
[[routes.chain]]
plugin = "header_set"
"set.routed-by" = "sift"
)toml");
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto sub = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(sub, nullptr);
  auto mapped = Sub(*sub, "eu.orders.>");
  auto original = Sub(*sub, "orders.>");
  auto other = Sub(*sub, "invoices.>");
  ASSERT_NE(mapped, nullptr);
  ASSERT_NE(original, nullptr);
  ASSERT_NE(other, nullptr);

  const Headers eu = {{"region", "eu"}, {"n", "1"}};
  SIFT_ASSERT_OK(pub->Publish("orders.new", "a", eu));
  // A confirmed PUB gets OK whatever the chain does with it.
  SIFT_ASSERT_OK(
      pub->PublishConfirmed("orders.new", "us", {{"region", "us"}}, kTimeout));
  SIFT_ASSERT_OK(pub->Publish("orders.paid", "b", eu));
  SIFT_ASSERT_OK(pub->Publish("orders.new", "none", Headers{}));
  SIFT_ASSERT_OK(pub->Publish("orders.a.b", "deep", eu));  // `from` misses
  SIFT_ASSERT_OK(pub->Publish("orders.new", "EU", {{"region", "EU"}}));
  const std::string big(100 * 1024, 'i');
  SIFT_ASSERT_OK(pub->Publish("invoices.big", big, {{"region", "us"}}));
  SIFT_ASSERT_OK(pub->Publish("invoices.small", "s"));
  SIFT_ASSERT_OK(pub->Publish("orders.end", "END", eu));
  SIFT_ASSERT_OK(pub->Publish("orders.x.y", "END", eu));
  SIFT_ASSERT_OK(pub->PublishConfirmed("invoices.end", "END", kTimeout));

  std::vector<Got> got = Until(*mapped, "END");
  ASSERT_EQ(Payloads(got), (std::vector<std::string>{"a", "b", "END"}));
  EXPECT_EQ(got[0].topic, "eu.orders.new");
  EXPECT_EQ(got[1].topic, "eu.orders.paid");
  EXPECT_EQ(got[2].topic, "eu.orders.end");
  for (const Got& g : got) {
    EXPECT_EQ(g.headers,
              (Pairs{{"region", "eu"}, {"n", "1"}, {"routed-by", "sift"}}));
  }
  got = Until(*original, "END");
  ASSERT_EQ(Payloads(got), (std::vector<std::string>{"deep", "END"}));
  EXPECT_EQ(got[0].topic, "orders.a.b");
  EXPECT_EQ(got[0].Header("routed-by"), "sift");
  EXPECT_EQ(got[1].topic, "orders.x.y");
  got = Until(*other, "END");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].topic, "invoices.big");
  EXPECT_EQ(got[0].payload, big);
  EXPECT_EQ(got[0].headers, (Pairs{{"region", "us"}}));
  EXPECT_EQ(got[1].topic, "invoices.small");
  EXPECT_TRUE(got[1].headers.empty());

  const wire::StatsReply stats = StatsOf(*pub);
  EXPECT_EQ(Drops(stats, "filtered"), 3u);  // us, none, EU
  EXPECT_EQ(Drops(stats, "plugin_error"), 0u);
  // 8 messages on orders.>; the invoices never enter the chain.
  ExpectRow(stats, "header_filter", "route orders.> #1", 8, 5, 3, 0);
  ExpectRow(stats, "topic_map", "route orders.> #2", 5, 5, 0, 0);
  ExpectRow(stats, "header_set", "route orders.> #3", 5, 5, 0, 0);
}

// ---- 2. Subscription filters ----

// SubscribeOptions.filter: header expressions evaluated by the broker per
// subscription (&&, numbers, `in`, exists, ^=). Subscribers with different
// filters on the same topic each get exactly their messages; one without a
// filter gets all. A malformed expression fails Subscribe with
// InvalidArgument / INVALID_FILTER naming the position, and neither that
// client's other subscriptions nor other clients' traffic notice.
TEST(PluginsTest, SubscriptionFiltersSelectPerSubscriber) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  Bystander bystander(siftd->endpoint(), "bystander.filters");
  auto pub = Connect(siftd->endpoint());
  auto a_client = Connect(siftd->endpoint());
  auto b_client = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(a_client, nullptr);
  ASSERT_NE(b_client, nullptr);
  auto a = Sub(*a_client, "f.x", WithFilter("region == 'eu' && priority >= 5"));
  auto b = Sub(*b_client, "f.x",
               WithFilter("region in ('us', 'uk') || exists(x-urgent)"));
  auto c = Sub(*b_client, "f.*", WithFilter("trace ^= 'abc-'"));
  auto all = Sub(*b_client, "f.x");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  ASSERT_NE(all, nullptr);

  // A bad filter on a's client: refused with the position; a's existing
  // subscription keeps its filter and its deliveries.
  absl::StatusOr<std::unique_ptr<Subscription>> bad =
      a_client->Subscribe("f.x", WithFilter("region == 'eu' &&"));
  ASSERT_FALSE(bad.ok());
  ExpectWireError(bad.status(), absl::StatusCode::kInvalidArgument,
                  wire::INVALID_FILTER, "at position");

  const std::vector<std::pair<std::string, Headers>> messages = {
      {"m1", {{"region", "eu"}, {"priority", "5"}}},
      {"m2", {{"region", "eu"}, {"priority", "4"}}},
      {"m3", {{"region", "us"}, {"priority", "9"}}},
      {"m4", {{"region", "uk"}, {"trace", "abc-1"}}},
      {"m5", {{"region", "eu"}, {"priority", "10"}, {"x-urgent", ""}}},
      {"m6", {{"priority", "7"}, {"trace", "xabc-"}}},
      {"m7", {{"region", "EU"}, {"priority", "6"}}},
      {"m8", {{"region", "eu"}, {"priority", "high"}}},
      {"m9", {{"trace", "abc-"}}},
      {"m10", {}},
      {"m11", {{"priority", "5"}, {"region", "eu"}, {"region", "us"}}},
  };
  for (const auto& [payload, headers] : messages) {
    SIFT_ASSERT_OK(pub->Publish("f.x", payload, headers));
  }
  SIFT_ASSERT_OK(pub->PublishConfirmed("f.x", "END",
                                       {{"region", "eu"},
                                        {"priority", "9"},
                                        {"x-urgent", "1"},
                                        {"trace", "abc-end"}},
                                       kTimeout));

  using V = std::vector<std::string>;
  EXPECT_EQ(Payloads(Until(*a, "END")), (V{"m1", "m5", "m11", "END"}));
  EXPECT_EQ(Payloads(Until(*b, "END")), (V{"m3", "m4", "m5", "END"}));
  EXPECT_EQ(Payloads(Until(*c, "END")), (V{"m4", "m9", "END"}));
  EXPECT_EQ(Payloads(Until(*all, "END")),
            (V{"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "m10",
               "m11", "END"}));
  bystander.Finish();
}

// ---- 3. Payload plugins ----

// Per subscription: payload_filter on JSON fields; proto_to_json with a
// descriptor set listed in [subscriptions] descriptor_sets (a protobuf
// payload arrives as JSON with content-type: application/json), and
// json_to_proto back; a descriptor set that is not listed is refused with
// PermissionDenied / FORBIDDEN.
TEST(PluginsTest, PayloadFilterAndJsonConversionPerSubscription) {
  auto siftd = StartWithConfig("payload", absl::StrCat(R"toml(
[subscriptions]
descriptor_sets = [")toml",
                                                       OrderSet(), R"toml("]
)toml"));
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(client, nullptr);
  auto big = Sub(*client, "pay.json",
                 WithPlugins({{"payload_filter",
                               {{"format", "json"},
                                {"expr", "amount > 100 || end == true"}}}}));
  auto to_json =
      Sub(*client, "pay.proto",
          WithPlugins(
              {{"proto_to_json",
                {{"descriptor_set", OrderSet()}, {"type", "shop.Order"}}}}));
  auto to_proto =
      Sub(*client, "pay.back",
          WithPlugins(
              {{"json_to_proto",
                {{"descriptor_set", OrderSet()}, {"type", "shop.Order"}}}}));
  ASSERT_NE(big, nullptr);
  ASSERT_NE(to_json, nullptr);
  ASSERT_NE(to_proto, nullptr);

  for (const char* p : {R"({"amount":150})", R"({"amount":50})",
                        R"({"amount":100})", R"({"amount":100.5,"id":"x"})",
                        R"({"id":"no amount"})", R"({"amount":"150"})"}) {
    SIFT_ASSERT_OK(pub->Publish("pay.json", p));
  }
  SIFT_ASSERT_OK(pub->Publish("pay.json", R"({"end":true})"));
  EXPECT_EQ(Payloads(Until(*big, R"({"end":true})")),
            (std::vector<std::string>{R"({"amount":150})",
                                      R"({"amount":100.5,"id":"x"})",
                                      R"({"end":true})"}));

  SIFT_ASSERT_OK(pub->PublishConfirmed("pay.proto", OrderBytes(),
                                       {{"x-keep", "1"}}, kTimeout));
  absl::StatusOr<Message> json = to_json->Next(kTimeout);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->payload(), kOrderJson);
  EXPECT_EQ(json->header("content-type"), "application/json");
  EXPECT_EQ(json->header("x-keep"), "1");

  SIFT_ASSERT_OK(pub->PublishConfirmed("pay.back", kOrderJson, kTimeout));
  absl::StatusOr<Message> binary = to_proto->Next(kTimeout);
  ASSERT_TRUE(binary.ok()) << binary.status();
  EXPECT_EQ(binary->payload(), OrderBytes());
  EXPECT_EQ(binary->header("content-type"), "application/x-protobuf");

  // envelope.pb exists and holds shop.Order too, but is not listed.
  absl::StatusOr<std::unique_ptr<Subscription>> refused = client->Subscribe(
      "pay.proto", WithPlugins({{"proto_to_json",
                                 {{"descriptor_set", EnvelopeSet()},
                                  {"type", "shop.Order"}}}}));
  ASSERT_FALSE(refused.ok());
  ExpectWireError(refused.status(), absl::StatusCode::kPermissionDenied,
                  wire::FORBIDDEN, "not listed");
  // One listed and one not, in one setting: refused too.
  refused = client->Subscribe(
      "pay.proto",
      WithPlugins(
          {{"proto_to_json",
            {{"descriptor_set", absl::StrCat(OrderSet(), ",", EnvelopeSet())},
             {"type", "shop.Order"}}}}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(protocol::WireCodeOf(refused.status()), wire::FORBIDDEN)
      << refused.status();
}

// ---- 4. Redaction, dedup, rate_limit, sample ----

// redact in a route chain (mask) and in a subscription (drop); enrich's
// per-topic sequence numbers in a route chain; dedup per
// subscription by the sift-msg-id header (the same id twice is delivered
// once; messages without an id all pass); rate_limit and sample per
// subscription, deterministic (a bucket that does not refill in the test's
// time; every Nth).
TEST(PluginsTest, RedactDedupRateLimitAndSample) {
  auto siftd = StartWithConfig("redact_dedup", R"toml(
[[routes]]
pattern = "en.>"
[[routes.chain]]
plugin = "enrich"
received_at = false

[[routes]]
pattern = "pii.>"
[[routes.chain]]
plugin = "redact"
format = "json"
fields = ["card", "customer.email"]
mode = "mask"
)toml");
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(client, nullptr);
  auto masked = Sub(*client, "pii.order");
  auto dropped =
      Sub(*client, "pii.order",
          WithPlugins(
              {{"redact", {{"format", "json"}, {"fields", "customer, id"}}}}));
  auto deduped = Sub(*client, "dd.x", WithPlugins({{"dedup", {}}}));
  auto limited = Sub(
      *client, "rl.x",
      WithPlugins(
          {{"rate_limit", {{"rate_per_second", "0.001"}, {"burst", "2"}}}}));
  auto sampled =
      Sub(*client, "sm.x", WithPlugins({{"sample", {{"every", "3"}}}}));
  ASSERT_NE(masked, nullptr);
  ASSERT_NE(dropped, nullptr);
  ASSERT_NE(deduped, nullptr);
  ASSERT_NE(limited, nullptr);
  ASSERT_NE(sampled, nullptr);

  SIFT_ASSERT_OK(pub->PublishConfirmed(
      "pii.order",
      R"({"id":"o1","card":"4111","customer":{"name":"Ann","email":"a@x.org"}})",
      kTimeout));
  absl::StatusOr<Message> m = masked->Next(kTimeout);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(
      m->payload(),
      R"({"id":"o1","card":"***","customer":{"name":"Ann","email":"***"}})");
  m = dropped->Next(kTimeout);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->payload(), R"({"card":"***"})");

  // enrich numbers each topic's messages from 1, replacing a sift-seq the
  // publisher sent.
  auto enriched = Sub(*client, "en.>");
  ASSERT_NE(enriched, nullptr);
  SIFT_ASSERT_OK(pub->Publish("en.a", "a1"));
  SIFT_ASSERT_OK(pub->Publish("en.b", "b1", {{"sift-seq", "999"}}));
  SIFT_ASSERT_OK(pub->Publish("en.a", "a2"));
  SIFT_ASSERT_OK(pub->Publish("en.a", "END"));
  std::vector<Got> seq = Until(*enriched, "END");
  ASSERT_EQ(Payloads(seq), (std::vector<std::string>{"a1", "b1", "a2", "END"}));
  EXPECT_EQ(seq[0].headers, (Pairs{{"sift-seq", "1"}}));
  EXPECT_EQ(seq[1].headers, (Pairs{{"sift-seq", "1"}}));
  EXPECT_EQ(seq[2].headers, (Pairs{{"sift-seq", "2"}}));
  EXPECT_EQ(seq[3].headers, (Pairs{{"sift-seq", "3"}}));

  const std::vector<std::pair<std::string, Headers>> dd = {
      {"a1", {{"sift-msg-id", "a"}}},
      {"a2", {{"sift-msg-id", "a"}}},
      {"b1", {{"sift-msg-id", "b"}}},
      {"n1", {}},
      {"n2", {}},
      {"e1", {{"sift-msg-id", ""}}},
      {"e2", {{"sift-msg-id", ""}}},
      {"a3", {{"sift-msg-id", "a"}}},
      {"b2", {{"sift-msg-id", "b"}}},
      {"END", {{"sift-msg-id", "end"}}}};
  for (const auto& [payload, headers] : dd) {
    SIFT_ASSERT_OK(pub->Publish("dd.x", payload, headers));
  }
  EXPECT_EQ(
      Payloads(Until(*deduped, "END")),
      (std::vector<std::string>{"a1", "b1", "n1", "n2", "e1", "e2", "END"}));

  // rate_limit: a full bucket of 2, refilling once in 1000 s: the first two
  // pass. sample every=3: the 1st, 4th, 7th, 10th.
  for (int i = 1; i <= 10; ++i) {
    SIFT_ASSERT_OK(pub->Publish("rl.x", absl::StrCat("r", i)));
    SIFT_ASSERT_OK(pub->Publish("sm.x", absl::StrCat("s", i)));
  }
  SIFT_ASSERT_OK(pub->Publish("sm.x", "s11"));
  SIFT_ASSERT_OK(pub->Publish("sm.x", "s12"));
  SIFT_ASSERT_OK(pub->Publish("sm.x", "END"));  // the 13th: kept
  EXPECT_EQ(Payloads(Until(*sampled, "END")),
            (std::vector<std::string>{"s1", "s4", "s7", "s10", "END"}));
  EXPECT_EQ(Payloads(Until(*limited, "r2")),
            (std::vector<std::string>{"r1", "r2"}));
  absl::StatusOr<Message> none = limited->Next(absl::Milliseconds(300));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kDeadlineExceeded)
      << (none.ok() ? std::string(none->payload()) : "");

  const wire::StatsReply stats = StatsOf(*pub);
  ExpectRow(stats, "redact", "route pii.> #1", 1, 1, 0, 0);
  ExpectRow(stats, "dedup", "subscriptions", 10, 7, 3, 0);
  ExpectRow(stats, "rate_limit", "subscriptions", 10, 2, 8, 0);
  ExpectRow(stats, "sample", "subscriptions", 13, 5, 8, 0);
}

// ---- 5. Plugin libraries ----

// A library from [[plugin_libraries]] that provides both kinds registers
// <name>_filter and <name>_transform ("example_filter",
// "example_transform"): in a route chain the filter drops payloads with its
// keyword and the transform upper-cases and adds a header; a SUB may use
// the filter when [subscriptions] allows it, and a setting it refuses is
// INVALID_PLUGIN with the library's text. An optional library that fails to
// load (required = false) is logged and siftd starts without it.
TEST(PluginsTest, LoadedLibraryFiltersAndTransforms) {
  auto siftd =
      StartWithConfig("library", absl::StrCat(R"toml(
[[plugin_libraries]]
path = ")toml",
                                              ExamplePlugin(), R"toml("

[[plugin_libraries]]
path = ")toml",
                                              BadPlugin("nofilter"), R"toml("
required = false

[[routes]]
pattern = "kw.>"
[[routes.chain]]
plugin = "example_filter"
keyword = "secret"
[[routes.chain]]
plugin = "example_transform"
header = "x-example"
value = "yes"

[[routes]]
pattern = "split.>"
[[routes.chain]]
plugin = "example_transform"
split = ","
uppercase = false

[subscriptions]
plugins = ["header_filter", "example_filter"]
)toml"));
  ASSERT_NE(siftd, nullptr);
  EXPECT_TRUE(siftd->WaitForLog("msg=\"plugin library not loaded\"", kTimeout))
      << siftd->LogTail();
  const std::string log = siftd->ReadLog();
  EXPECT_TRUE(absl::StrContains(log, BadPlugin("nofilter"))) << log;
  EXPECT_TRUE(absl::StrContains(log, "required = false: starting without it"))
      << log;

  auto pub = Connect(siftd->endpoint());
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(client, nullptr);
  auto routed = Sub(*client, "kw.>");
  auto filtered =
      Sub(*client, "lib.x",
          WithPlugins({{"example_filter", {{"keyword", "drop-me"}}}}));
  ASSERT_NE(routed, nullptr);
  ASSERT_NE(filtered, nullptr);

  SIFT_ASSERT_OK(pub->Publish("kw.a", "hello"));
  SIFT_ASSERT_OK(pub->Publish("kw.a", "top secret plan"));
  SIFT_ASSERT_OK(pub->Publish("kw.b", "still Fine", {{"k", "v"}}));
  SIFT_ASSERT_OK(pub->Publish("kw.b", "end"));
  std::vector<Got> got = Until(*routed, "END");
  ASSERT_EQ(Payloads(got),
            (std::vector<std::string>{"HELLO", "STILL FINE", "END"}));
  EXPECT_EQ(got[0].headers, (Pairs{{"x-example", "yes"}}));
  EXPECT_EQ(got[1].headers, (Pairs{{"k", "v"}, {"x-example", "yes"}}));

  // One message in, one out per piece (empty pieces too), in order.
  auto pieces = Sub(*client, "split.>");
  ASSERT_NE(pieces, nullptr);
  SIFT_ASSERT_OK(pub->Publish("split.x", "a,b,,c", {{"h", "1"}}));
  SIFT_ASSERT_OK(pub->Publish("split.x", "END"));
  got = Until(*pieces, "END");
  ASSERT_EQ(Payloads(got),
            (std::vector<std::string>{"a", "b", "", "c", "END"}));
  for (const Got& g : got) EXPECT_EQ(g.topic, "split.x");
  EXPECT_EQ(got[2].headers, (Pairs{{"h", "1"}}));

  SIFT_ASSERT_OK(pub->Publish("lib.x", "keep"));
  SIFT_ASSERT_OK(pub->Publish("lib.x", "please drop-me"));
  SIFT_ASSERT_OK(pub->Publish("lib.x", "END"));
  EXPECT_EQ(Payloads(Until(*filtered, "END")),
            (std::vector<std::string>{"keep", "END"}));

  absl::StatusOr<std::unique_ptr<Subscription>> bad = client->Subscribe(
      "lib.x", WithPlugins({{"example_filter", {{"colour", "red"}}}}));
  ASSERT_FALSE(bad.ok());
  ExpectWireError(bad.status(), absl::StatusCode::kInvalidArgument,
                  wire::INVALID_PLUGIN, "unknown setting (known: keyword)");
  // The transform is registered but not allowed in subscriptions here.
  bad = client->Subscribe("lib.x", WithPlugins({{"example_transform", {}}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(protocol::WireCodeOf(bad.status()), wire::FORBIDDEN)
      << bad.status();

  const wire::StatsReply stats = StatsOf(*pub);
  ExpectRow(stats, "example_filter", "route kw.> #1", 4, 3, 1, 0);
  ExpectRow(stats, "example_transform", "route kw.> #2", 3, 3, 0, 0);
  ExpectRow(stats, "example_transform", "route split.> #1", 2, 2, 0, 0);
  ExpectRow(stats, "example_filter", "subscriptions", 3, 2, 1, 0);
  EXPECT_EQ(Drops(stats, "filtered"), 2u);
}

// A required library that cannot be used (built for another ABI, missing a
// function its kinds need, exporting no ABI version) stops siftd at start
// with exit status 2 and one stderr line naming the library and why.
TEST(PluginsTest, ARequiredBadLibraryStopsSiftdWithStatus2) {
  SIFT_ASSERT_OK_AND_ASSIGN(const std::string siftd_path, SiftdPath());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"version", "was built for ABI 999, siftd speaks 1"},
      {"nofilter", "sift_plugin_filter"},
      {"noversion", "exports no sift_plugin_abi_version"},
  };
  for (const auto& [kind, says] : cases) {
    SCOPED_TRACE(kind);
    const std::string config = ConfigPath(absl::StrCat("required_", kind));
    WriteFile(config, absl::StrCat("[[plugin_libraries]]\npath = \"",
                                   BadPlugin(kind), "\"\nrequired = true\n"));
    SIFT_ASSERT_OK_AND_ASSIGN(const int port, PickFreePort());
    const std::string out =
        absl::StrCat(TestTmpDir(), "/required_", kind, ".log");
    const pid_t pid =
        Spawn({siftd_path, absl::StrCat("--endpoints=tcp://127.0.0.1:", port),
               absl::StrCat("--config=", config)},
              out);
    ASSERT_GT(pid, 0);
    EXPECT_EQ(Reap(pid, kTimeout), 2);
    const std::string log = ReadFile(out);
    EXPECT_TRUE(absl::StrContains(
        log, absl::StrCat("siftd: plugin library ", BadPlugin(kind), ": ")))
        << log;
    EXPECT_TRUE(absl::StrContains(log, says)) << log;
    EXPECT_FALSE(absl::StrContains(log, "msg=ready")) << log;
  }
}

// ---- 6. Lua ----

// A route's lua_filter (inline source) keeps and drops; a runaway script
// (`while true do end`) is stopped by its instruction budget: the message
// is dead-lettered, counted as the plugin's error in STATS and as drop
// reason plugin_error, and the broker keeps serving at once (a PING answers
// promptly, other topics deliver, the script's next message runs normally).
TEST(PluginsTest, LuaFilterAndARunawayScript) {
  auto siftd = StartWithConfig("lua", R"toml(
[[routes]]
pattern = "lua.>"
[[routes.chain]]
plugin = "lua_filter"
instruction_budget = 200000
source = '''
function filter(msg)
  if msg.payload == "loop" then
    while true do end
  end
  return msg.payload ~= "drop"
end
'''

[[routes]]
pattern = "fan.*"
[[routes.chain]]
plugin = "lua_transform"
source = '''
function transform(msg)
  if msg.payload == "none" then return nil end
  return {
    {topic = "out.one", payload = msg.payload .. "-1"},
    {topic = "out.two", payload = msg.payload .. "-2",
     headers = {{"from", msg.topic}}},
  }
end
'''
)toml");
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(client, nullptr);
  auto lua = Sub(*client, "lua.>");
  auto dead = Sub(*client, "$sift.deadletter.>");
  auto plain = Sub(*client, "plain.x");
  ASSERT_NE(lua, nullptr);
  ASSERT_NE(dead, nullptr);
  ASSERT_NE(plain, nullptr);
  RawDealer pinger(siftd->endpoint());
  ASSERT_TRUE(pinger.Hello().ok());

  constexpr int kLoops = 5;
  SIFT_ASSERT_OK(pub->Publish("lua.a", "keep"));
  SIFT_ASSERT_OK(pub->Publish("lua.a", "drop"));
  for (int i = 0; i < kLoops; ++i) {
    SIFT_ASSERT_OK(pub->Publish("lua.a", "loop", {{"n", absl::StrCat(i)}}));
  }
  SIFT_ASSERT_OK(pub->Publish("plain.x", "END"));
  SIFT_ASSERT_OK(pub->Publish("lua.b", "END"));
  const absl::Time start = absl::Now();
  auto pong = pinger.Call(PingHeader(42), std::nullopt, absl::Seconds(2));
  const absl::Duration ping_time = absl::Now() - start;
  ASSERT_TRUE(pong.ok() && pong->has_pong())
      << (pong.ok() ? pong->DebugString() : pong.status().ToString());
  EXPECT_LT(ping_time, absl::Seconds(1));

  EXPECT_EQ(Payloads(Until(*lua, "END")),
            (std::vector<std::string>{"keep", "END"}));
  EXPECT_EQ(Payloads(Until(*plain, "END")), (std::vector<std::string>{"END"}));

  // A lua_transform's outputs are routed to their own topics; nil drops.
  auto fanned = Sub(*client, "out.*");
  ASSERT_NE(fanned, nullptr);
  SIFT_ASSERT_OK(pub->Publish("fan.a", "m"));
  SIFT_ASSERT_OK(pub->Publish("fan.a", "none"));
  SIFT_ASSERT_OK(pub->Publish("fan.b", "END"));
  std::vector<Got> fan = Until(*fanned, "END-2");
  ASSERT_EQ(Payloads(fan),
            (std::vector<std::string>{"m-1", "m-2", "END-1", "END-2"}));
  EXPECT_EQ(fan[0].topic, "out.one");
  EXPECT_EQ(fan[1].topic, "out.two");
  EXPECT_EQ(fan[1].headers, (Pairs{{"from", "fan.a"}}));
  EXPECT_EQ(fan[3].headers, (Pairs{{"from", "fan.b"}}));

  for (int i = 0; i < kLoops; ++i) {
    absl::StatusOr<Message> m = dead->Next(kTimeout);
    ASSERT_TRUE(m.ok()) << m.status();
    const Got g = Copy(*m);
    EXPECT_EQ(g.topic, "$sift.deadletter.lua.a");
    EXPECT_EQ(g.payload, "loop");
    EXPECT_EQ(g.Header("n"), absl::StrCat(i));
    EXPECT_EQ(g.Header("sift-original-topic"), "lua.a");
    EXPECT_EQ(g.Header("sift-plugin"), "lua_filter");
    EXPECT_TRUE(absl::StrContains(g.Header("sift-reason"),
                                  "instruction budget of 200000 exceeded"))
        << g.Header("sift-reason");
  }

  const wire::StatsReply stats = StatsOf(*pub);
  ExpectRow(stats, "lua_filter", "route lua.> #1", 3 + kLoops, 2, 1, kLoops);
  EXPECT_EQ(Drops(stats, "plugin_error"), uint64_t{kLoops});
  ExpectRow(stats, "lua_transform", "route fan.* #1", 3, 2, 1, 0);
  EXPECT_EQ(Drops(stats, "filtered"), 2u);
  EXPECT_TRUE(siftd->IsRunning());
}

// ---- 7. Dead letters ----

// A plugin error (payload_filter on a payload that is not JSON), in a route
// chain or a subscription's chain, sends the message to
// $sift.deadletter.<topic> with its headers plus sift-original-topic,
// sift-plugin and sift-reason; the subscriber whose chain failed does not
// get it. Clients may not publish under $sift. (FORBIDDEN from the broker,
// PermissionDenied from the C++ client before sending), and a route's
// topic_map may not forge a dead letter either.
TEST(PluginsTest, DeadLettersAndReservedTopics) {
  auto siftd = StartWithConfig("deadletter", R"toml(
[[routes]]
pattern = "dl.>"
[[routes.chain]]
plugin = "payload_filter"
format = "json"
expr = "amount > 1"

[[routes]]
pattern = "forge.>"
[[routes.chain]]
plugin = "topic_map"
from = "forge.*"
to = "$sift.deadletter.$1"
)toml");
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(client, nullptr);
  auto dead = Sub(*client, "$sift.deadletter.>");
  auto all_reserved = Sub(*client, "$sift.>");
  auto routed = Sub(*client, "dl.>");
  auto picky = Sub(
      *client, "dls.x",
      WithPlugins(
          {{"payload_filter", {{"format", "json"}, {"expr", "ok == true"}}}}));
  auto plain = Sub(*client, "dls.x");
  ASSERT_NE(dead, nullptr);
  ASSERT_NE(all_reserved, nullptr);
  ASSERT_NE(routed, nullptr);
  ASSERT_NE(picky, nullptr);
  ASSERT_NE(plain, nullptr);

  SIFT_ASSERT_OK(pub->Publish("dl.x", "{not json", {{"trace", "t1"}}));
  SIFT_ASSERT_OK(pub->Publish("dl.x", R"({"amount":5})"));
  SIFT_ASSERT_OK(pub->Publish("dls.x", "<xml/>", {{"trace", "t2"}}));
  SIFT_ASSERT_OK(pub->Publish("dls.x", R"({"ok":true})"));

  // Clients may not publish under $sift.: refused by the broker (raw PUB)
  // and by the C++ client; forging through a route's topic_map is refused
  // too.
  RawDealer raw(siftd->endpoint());
  ASSERT_TRUE(raw.Hello().ok());
  for (const char* topic : {"$sift.x", "$sift.deadletter.dl.x"}) {
    auto reply = raw.Call(PubHeader(7, topic, true), std::string("forged"));
    ASSERT_TRUE(reply.ok()) << reply.status();
    ASSERT_TRUE(reply->has_error()) << reply->DebugString();
    EXPECT_EQ(reply->error().code(), wire::FORBIDDEN) << reply->DebugString();
    EXPECT_EQ(reply->request_id(), 7u);
  }
  absl::Status s = pub->Publish("$sift.deadletter.dl.x", "forged");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  SIFT_ASSERT_OK(pub->Publish("forge.dl", "forged"));
  SIFT_ASSERT_OK(pub->PublishConfirmed("dl.end", R"({"amount":9})", kTimeout));
  SIFT_ASSERT_OK(pub->Publish("dl.y", "END"));  // not JSON: a dead letter

  EXPECT_EQ(Payloads(Until(*routed, R"({"amount":9})")),
            (std::vector<std::string>{R"({"amount":5})", R"({"amount":9})"}));
  EXPECT_EQ(Payloads(Until(*picky, R"({"ok":true})")),
            (std::vector<std::string>{R"({"ok":true})"}));
  EXPECT_EQ(Payloads(Until(*plain, R"({"ok":true})")),
            (std::vector<std::string>{"<xml/>", R"({"ok":true})"}));

  std::vector<Got> got = Until(*dead, "END");
  // The forgery's output (a route may not publish under $sift.) is refused
  // and dead-lettered by the broker, under its own topic, not the forged one.
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].topic, "$sift.deadletter.dl.x");
  EXPECT_EQ(got[0].payload, "{not json");
  ASSERT_EQ(got[0].headers.size(), 4u);
  EXPECT_EQ(got[0].headers[0],
            (std::pair<std::string, std::string>{"trace", "t1"}));
  EXPECT_EQ(got[0].headers[1].first, "sift-original-topic");
  EXPECT_EQ(got[0].headers[1].second, "dl.x");
  EXPECT_EQ(got[0].headers[2].first, "sift-plugin");
  EXPECT_EQ(got[0].headers[2].second, "payload_filter");
  EXPECT_EQ(got[0].headers[3].first, "sift-reason");
  EXPECT_TRUE(absl::StrContains(got[0].headers[3].second, "not valid JSON"))
      << got[0].headers[3].second;
  EXPECT_EQ(got[1].topic, "$sift.deadletter.dls.x");
  EXPECT_EQ(got[1].payload, "<xml/>");
  EXPECT_EQ(got[1].Header("trace"), "t2");
  EXPECT_EQ(got[1].Header("sift-original-topic"), "dls.x");
  EXPECT_EQ(got[1].Header("sift-plugin"), "payload_filter");
  EXPECT_EQ(got[2].topic, "$sift.deadletter.forge.dl");
  EXPECT_EQ(got[2].Header("sift-plugin"), "router");
  EXPECT_EQ(got[3].topic, "$sift.deadletter.dl.y");
  // $sift.> saw the same dead letters and nothing forged.
  EXPECT_EQ(Payloads(Until(*all_reserved, "END")),
            (std::vector<std::string>{"{not json", "<xml/>", "forged",
                                      "END"}));

  const wire::StatsReply stats = StatsOf(*pub);
  EXPECT_EQ(Drops(stats, "plugin_error"), 4u);  // 3 dead letters, 1 forgery
  ExpectRow(stats, "payload_filter", "route dl.> #1", 4, 2, 0, 2);
  ExpectRow(stats, "payload_filter", "subscriptions", 2, 1, 0, 1);
}

// A dead letter's sift-* headers are the broker's, once, even when the
// failed message carried its own (dropped); a dead letter whose topic would
// be too long for the topic limits goes to $sift.deadletter._too_long,
// still naming the original topic.
TEST(PluginsTest, DeadLetterHeadersAreTheBrokersAndLongTopicsFit) {
  auto siftd = StartWithConfig("deadletter_edges", R"toml(
[[routes]]
pattern = "dl.>"
[[routes.chain]]
plugin = "payload_filter"
format = "json"
expr = "amount > 1"
)toml");
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(client, nullptr);
  auto dead = Sub(*client, "$sift.deadletter.>");
  ASSERT_NE(dead, nullptr);

  SIFT_ASSERT_OK(pub->Publish("dl.x", "spoof",
                              {{"sift-plugin", "fake"},
                               {"a", "1"},
                               {"sift-reason", "fake"},
                               {"sift-original-topic", "elsewhere"}}));
  // 256 bytes, the default max_topic_length: fine itself, too long with
  // "$sift.deadletter." in front.
  const std::string long_topic = "dl." + std::string(253, 'l');
  SIFT_ASSERT_OK(pub->Publish(long_topic, "long"));
  SIFT_ASSERT_OK(pub->Publish("dl.z", "END"));

  std::vector<Got> got = Until(*dead, "END");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].topic, "$sift.deadletter.dl.x");
  ASSERT_EQ(got[0].headers.size(), 4u) << got[0].payload;
  EXPECT_EQ(got[0].headers[0], (std::pair<std::string, std::string>{"a", "1"}));
  EXPECT_EQ(got[0].Header("sift-plugin"), "payload_filter");
  EXPECT_EQ(got[0].Header("sift-original-topic"), "dl.x");
  EXPECT_NE(got[0].Header("sift-reason"), "fake");
  EXPECT_EQ(got[1].topic, "$sift.deadletter._too_long");
  EXPECT_EQ(got[1].payload, "long");
  EXPECT_EQ(got[1].Header("sift-original-topic"), long_topic);
  EXPECT_EQ(Drops(StatsOf(*pub), "plugin_error"), 3u);
}

// A failed message that used the header limits (max_headers,
// max_headers_bytes) as a client may: its dead letter has three more
// headers and must still reach $sift.deadletter.<topic> (docs/protocol.md
// §6.1: a message a plugin fails "is published to the dead-letter topic").
//
// DISABLED: a broker bug. server.cc PublishDeadLetter routes the dead
// letter with router_.Publish, which applies the clients' header limits to
// it: the broker's own sift-original-topic, sift-plugin and sift-reason
// (up to 512 bytes) push it over max_headers / max_headers_bytes, the
// publish fails with HEADERS_TOO_LARGE, and the dead letter is lost without
// a log line (counted as plugin_error and as headers_too_large). With the
// defaults (64 headers, 65536 bytes) that is any failed message with 62 or
// more headers, or close to 65536 header bytes.
TEST(PluginsTest, DeadLettersOfMessagesAtTheHeaderLimitsAreNotLost) {
  WriteFile(ConfigPath("deadletter_limits"), R"toml(
[[routes]]
pattern = "dl.>"
[[routes.chain]]
plugin = "payload_filter"
format = "json"
expr = "amount > 1"
)toml");
  SiftdOptions options;
  options.extra_flags = {
      absl::StrCat("--config=", ConfigPath("deadletter_limits")),
      "--max_headers=4", "--max_headers_bytes=1000"};
  SIFT_ASSERT_OK_AND_ASSIGN(auto siftd, SiftdProcess::Start(options));
  auto pub = Connect(siftd->endpoint());
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(client, nullptr);
  auto dead = Sub(*client, "$sift.deadletter.>");
  ASSERT_NE(dead, nullptr);

  // Four headers (max_headers); then 1000 key and value bytes
  // (max_headers_bytes) in one; then none.
  SIFT_ASSERT_OK(pub->PublishConfirmed(
      "dl.count", "count", {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}},
      kTimeout));
  SIFT_ASSERT_OK(pub->PublishConfirmed(
      "dl.bytes", "bytes", {{"big", std::string(997, 'v')}}, kTimeout));
  SIFT_ASSERT_OK(pub->Publish("dl.end", "END"));

  EXPECT_EQ(Payloads(Until(*dead, "END")),
            (std::vector<std::string>{"count", "bytes", "END"}));
  const wire::StatsReply stats = StatsOf(*pub);
  EXPECT_EQ(Drops(stats, "plugin_error"), 3u);
  EXPECT_EQ(Drops(stats, "headers_too_large"), 0u);
}

// ---- 8. Reload ----

// A config whose one route sets header v to `version`.
std::string VersionConfig(int version) {
  return absl::StrCat(R"toml(
[[routes]]
pattern = "r.>"
[[routes.chain]]
plugin = "header_set"
"set.v" = ")toml",
                      version, "\"\n");
}

int CountOf(const std::string& text, std::string_view needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

// The v header of a message published on r.x now.
std::string CurrentVersion(Client& pub, Subscription& sub) {
  absl::Status s = pub.PublishConfirmed("r.x", "probe", kTimeout);
  if (!s.ok()) return s.ToString();
  absl::StatusOr<Message> m = sub.Next(kTimeout);
  if (!m.ok()) return m.status().ToString();
  return Copy(*m).Header("v");
}

// The config file rewritten and (a) RELOAD (Client::Reload): the new chain
// is in force when it returns; (b) SIGHUP: in force once logged; (c) an
// invalid file: Reload fails InvalidArgument / INVALID_CONFIG saying why,
// SIGHUP logs the refusal, and the old chain stays in force. A broker
// without --config answers RELOAD with INVALID_CONFIG.
TEST(PluginsTest, ReloadByRequestAndSighupKeepsTheOldConfigOnError) {
  const std::string config = ConfigPath("reload");
  auto siftd = StartWithConfig("reload", VersionConfig(1));
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(client, nullptr);
  auto sub = Sub(*client, "r.>");
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(CurrentVersion(*pub, *sub), "1");

  WriteFile(config, VersionConfig(2));
  EXPECT_EQ(CurrentVersion(*pub, *sub), "1");  // not before a reload
  SIFT_ASSERT_OK(client->Reload(kTimeout));
  EXPECT_EQ(CurrentVersion(*pub, *sub), "2");

  WriteFile(config, VersionConfig(3));
  ASSERT_EQ(kill(siftd->pid(), SIGHUP), 0);
  EXPECT_TRUE(siftd->WaitForLog("by=SIGHUP", kTimeout)) << siftd->LogTail();
  EXPECT_EQ(CurrentVersion(*pub, *sub), "3");

  // Invalid files: a plugin nobody registered, a syntax error, settings a
  // plugin refuses.
  const std::vector<std::pair<std::string, std::string>> invalid = {
      {"[[routes]]\npattern = \"r.>\"\n[[routes.chain]]\nplugin = \"nope\"\n",
       "nope"},
      {"[[routes]\npattern = \"r.>\"\n", "syntax error"},
      {"[[routes]]\npattern = \"r.>\"\n[[routes.chain]]\nplugin = "
       "\"rate_limit\"\n",
       "rate_per_second"},
  };
  for (const auto& [text, says] : invalid) {
    SCOPED_TRACE(text);
    WriteFile(config, text);
    absl::Status s = client->Reload(kTimeout);
    ExpectWireError(s, absl::StatusCode::kInvalidArgument, wire::INVALID_CONFIG,
                    says);
    EXPECT_TRUE(absl::StrContains(s.message(), "the old plugin config stays"))
        << s;
    EXPECT_EQ(CurrentVersion(*pub, *sub), "3");
  }
  const int refused_before = CountOf(siftd->ReadLog(), "reload refused");
  ASSERT_EQ(kill(siftd->pid(), SIGHUP), 0);
  const absl::Time deadline = absl::Now() + kTimeout;
  while (CountOf(siftd->ReadLog(), "reload refused") == refused_before &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_GT(CountOf(siftd->ReadLog(), "reload refused"), refused_before)
      << siftd->LogTail();
  EXPECT_EQ(CurrentVersion(*pub, *sub), "3");
  EXPECT_TRUE(siftd->IsRunning());

  // Fixed again: in force.
  WriteFile(config, VersionConfig(4));
  SIFT_ASSERT_OK(client->Reload(kTimeout));
  EXPECT_EQ(CurrentVersion(*pub, *sub), "4");

  auto plain = StartSiftd();
  ASSERT_NE(plain, nullptr);
  auto other = Connect(plain->endpoint());
  ASSERT_NE(other, nullptr);
  ExpectWireError(other->Reload(kTimeout), absl::StatusCode::kInvalidArgument,
                  wire::INVALID_CONFIG, "--config");
}

// Reloads under traffic: 20000 numbered messages through a route whose
// chain is the same before and after but for the header value it sets,
// while the config is reloaded several times (RELOAD and SIGHUP in turn).
// The subscriber gets every number exactly once, in order, and the header
// values only ever move forward (each message saw one whole chain).
TEST(PluginsTest, ReloadUnderTrafficLosesAndDuplicatesNothing) {
  const std::string config = ConfigPath("reload_traffic");
  auto siftd = StartWithConfig("reload_traffic", VersionConfig(1));
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto admin = Connect(siftd->endpoint());
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(admin, nullptr);
  ASSERT_NE(client, nullptr);
  auto sub = Sub(*client, "r.>");
  ASSERT_NE(sub, nullptr);

  constexpr int kMessages = 20000;
  std::atomic<int> published{0};
  std::atomic<bool> publish_failed{false};
  std::atomic<int> reloads{0};
  std::thread publisher([&] {
    for (int i = 0; i < kMessages; ++i) {
      // Every 5000 messages, let a reload land first (bounded), so that
      // reloads fall inside the traffic however the threads are scheduled.
      if (i > 0 && i % 5000 == 0) {
        const absl::Time deadline = absl::Now() + kTimeout;
        while (reloads.load() < i / 5000 && absl::Now() < deadline) {
          absl::SleepFor(absl::Milliseconds(1));
        }
      }
      if (!pub->Publish("r.load", absl::StrCat(i)).ok()) {
        publish_failed.store(true);
        return;
      }
      published.store(i + 1);
      if (i % 100 == 99) absl::SleepFor(absl::Milliseconds(1));
    }
  });
  std::atomic<bool> reload_failed{false};
  std::thread reloader([&] {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    for (int version = 2; published.load() < kMessages &&
                          !publish_failed.load() && absl::Now() < deadline;
         ++version) {
      WriteFile(config, VersionConfig(version));
      if (version % 2 == 0) {
        if (!admin->Reload(kTimeout).ok()) reload_failed.store(true);
      } else {
        const int before = CountOf(siftd->ReadLog(), "by=SIGHUP");
        kill(siftd->pid(), SIGHUP);
        while (CountOf(siftd->ReadLog(), "by=SIGHUP") == before &&
               absl::Now() < deadline) {
          absl::SleepFor(absl::Milliseconds(2));
        }
      }
      reloads.fetch_add(1);
      absl::SleepFor(absl::Milliseconds(10));
    }
  });

  int next = 0;
  int last_version = 0;
  int versions_seen = 0;
  for (; next < kMessages; ++next) {
    absl::StatusOr<Message> m = sub->Next(kTimeout);
    if (!m.ok()) {
      ADD_FAILURE() << "after " << next << ": " << m.status();
      break;
    }
    if (m->payload() != absl::StrCat(next)) {
      ADD_FAILURE() << "expected " << next << ", got " << m->payload();
      break;
    }
    int version = 0;
    const std::optional<std::string_view> v = m->header("v");
    if (!v.has_value() || !absl::SimpleAtoi(std::string(*v), &version) ||
        version < last_version) {
      ADD_FAILURE() << "message " << next
                    << " has v=" << (v.has_value() ? std::string(*v) : "<none>")
                    << " after v=" << last_version;
      break;
    }
    if (version != last_version) ++versions_seen;
    last_version = version;
  }
  publisher.join();
  reloader.join();
  EXPECT_EQ(next, kMessages);
  EXPECT_FALSE(publish_failed.load());
  EXPECT_FALSE(reload_failed.load());
  EXPECT_GE(reloads.load(), 3);
  EXPECT_GE(versions_seen, 4) << "reloads did not land during the traffic";
  // Nothing more: no duplicate after the last one.
  SIFT_ASSERT_OK(pub->PublishConfirmed("r.load", "END", kTimeout));
  EXPECT_EQ(Payloads(Until(*sub, "END")), (std::vector<std::string>{"END"}));
  const wire::StatsReply stats = StatsOf(*pub);
  EXPECT_EQ(Drops(stats, "filtered"), 0u);
  EXPECT_EQ(Drops(stats, "slow_consumer"), 0u);
}

// ---- 9. STATS ----

// STATS has a row per route stage ("route P #N") and one per plugin summed
// over all subscription chains ("subscriptions"); calls, passes, drops and
// errors add up to what the test sent, and the drop reasons agree.
TEST(PluginsTest, StatsRowsAddUp) {
  auto siftd = StartWithConfig("stats", R"toml(
[[routes]]
pattern = "stat.>"
[[routes.chain]]
plugin = "header_filter"
expr = "keep == 'yes'"
[[routes.chain]]
plugin = "sample"
every = 2
[[routes.chain]]
plugin = "payload_filter"
format = "json"
expr = "n >= 0"
)toml");
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(client, nullptr);
  auto routed = Sub(*client, "stat.>");
  ASSERT_NE(routed, nullptr);

  // 6 with keep=no (header_filter drops); 12 with keep=yes, of which sample
  // keeps the 1st, 3rd, ... (6); of those payload_filter fails one (not
  // JSON), drops one (n < 0) and passes four. The last one passed is "END".
  for (int i = 0; i < 6; ++i) {
    SIFT_ASSERT_OK(pub->Publish("stat.a", "{}", {{"keep", "no"}}));
  }
  std::vector<std::string> expected;
  for (int i = 0; i < 12; ++i) {
    std::string payload = absl::StrCat(R"({"n":)", i, "}");
    if (i == 4) payload = "oops";
    if (i == 8) payload = R"({"n":-1})";
    if (i == 10) payload = R"({"n":10,"end":true})";
    if (i % 2 == 0 && i != 4 && i != 8) expected.push_back(payload);
    SIFT_ASSERT_OK(pub->Publish("stat.a", payload, {{"keep", "yes"}}));
  }
  EXPECT_EQ(Payloads(Until(*routed, R"({"n":10,"end":true})")), expected);

  wire::StatsReply stats = StatsOf(*pub);
  ExpectRow(stats, "header_filter", "route stat.> #1", 18, 12, 6, 0);
  ExpectRow(stats, "sample", "route stat.> #2", 12, 6, 6, 0);
  ExpectRow(stats, "payload_filter", "route stat.> #3", 6, 4, 1, 1);
  EXPECT_EQ(Drops(stats, "filtered"), 13u);
  EXPECT_EQ(Drops(stats, "plugin_error"), 1u);
  EXPECT_FALSE(Row(stats, "header_filter", "subscriptions").has_value());

  // Subscriptions: a's filter and sample, b's filter; all three rows sum
  // over both subscribers.
  auto a_opts = WithFilter("x == '1'");
  a_opts.plugins = {{"sample", {{"every", "2"}}}};
  auto a = Sub(*client, "sub.stats", a_opts);
  auto b = Sub(*client, "sub.stats", WithFilter("x == '2' || x == 'end'"));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (int i = 0; i < 10; ++i) {
    SIFT_ASSERT_OK(
        pub->Publish("sub.stats", absl::StrCat("one", i), {{"x", "1"}}));
  }
  for (int i = 0; i < 4; ++i) {
    SIFT_ASSERT_OK(
        pub->Publish("sub.stats", absl::StrCat("two", i), {{"x", "2"}}));
  }
  for (int i = 0; i < 3; ++i) {
    SIFT_ASSERT_OK(pub->Publish("sub.stats", "three", {{"x", "3"}}));
  }
  SIFT_ASSERT_OK(pub->Publish("sub.stats", "END", {{"x", "end"}}));
  EXPECT_EQ(Payloads(Until(*a, "one8")),
            (std::vector<std::string>{"one0", "one2", "one4", "one6", "one8"}));
  EXPECT_EQ(Payloads(Until(*b, "END")),
            (std::vector<std::string>{"two0", "two1", "two2", "two3", "END"}));
  // 18 messages, two subscribers: 36 filter calls; a keeps 10, b 5.
  stats = StatsOf(*pub);
  ExpectRow(stats, "header_filter", "subscriptions", 36, 15, 21, 0);
  ExpectRow(stats, "sample", "subscriptions", 10, 5, 5, 0);
  EXPECT_EQ(Drops(stats, "filtered"), 13u + 21u + 5u);
  // The route rows are as they were.
  ExpectRow(stats, "header_filter", "route stat.> #1", 18, 12, 6, 0);
}

// Subscription chains made before a reload keep running (server.cc,
// InstallPlugins), and chain.h says stage counters are shared so that a
// STATS row can "outlive a config reload". So the "subscriptions" rows
// should go on counting those subscriptions' plugins after a reload.
//
// DISABLED: a broker bug. The "subscriptions" counters live in the
// PluginSet (PluginSet::subscription_counters_), which a reload replaces;
// the chains made before keep counting into the old set's counters, which
// no STATS reports any more. After a RELOAD the row is gone although the
// subscription's filter still runs (and "filtered" still counts its drops).
TEST(PluginsTest, SubscriptionRowsKeepCountingAcrossAReload) {
  auto siftd = StartWithConfig("stats_reload", VersionConfig(1));
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(client, nullptr);
  auto sub = Sub(*client, "sr.x", WithFilter("x == '1'"));
  ASSERT_NE(sub, nullptr);
  SIFT_ASSERT_OK(pub->Publish("sr.x", "a", {{"x", "1"}}));
  SIFT_ASSERT_OK(pub->Publish("sr.x", "b", {{"x", "2"}}));
  SIFT_ASSERT_OK(pub->Publish("sr.x", "END", {{"x", "1"}}));
  EXPECT_EQ(Payloads(Until(*sub, "END")),
            (std::vector<std::string>{"a", "END"}));
  ExpectRow(StatsOf(*pub), "header_filter", "subscriptions", 3, 2, 1, 0);

  SIFT_ASSERT_OK(client->Reload(kTimeout));
  SIFT_ASSERT_OK(pub->Publish("sr.x", "c", {{"x", "2"}}));
  SIFT_ASSERT_OK(pub->Publish("sr.x", "END", {{"x", "1"}}));
  EXPECT_EQ(Payloads(Until(*sub, "END")), (std::vector<std::string>{"END"}));
  const wire::StatsReply stats = StatsOf(*pub);
  ASSERT_TRUE(Row(stats, "header_filter", "subscriptions").has_value())
      << "the subscription's filter ran after the reload, but STATS has no "
         "row for it: "
      << stats.DebugString();
  ExpectRow(stats, "header_filter", "subscriptions", 5, 3, 2, 0);
}

// ---- 10. Bad input ----

// docs/protocol.md §6.1 and clients/cpp/client.h: INVALID_PLUGIN is for "an
// unknown plugin or settings it refuses", FORBIDDEN for "a plugin or
// descriptor set the broker does not allow in subscriptions". A SUB naming a
// plugin that does not exist (a typo) should get INVALID_PLUGIN.
//
// DISABLED: a broker bug. PluginSet::SubscriptionChain checks the
// [subscriptions] allow-list before the registry, so a name nobody
// registered gets FORBIDDEN ("plugin \"payload_filtr\" is not allowed in
// subscriptions ...") unless the operator listed it; INVALID_PLUGIN for an
// unknown name is reachable only through a listed-but-unregistered name.
TEST(PluginsTest, AnUnknownPluginNameIsInvalidPlugin) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  for (const char* name : {"payload_filtr", "no_such_plugin"}) {
    SCOPED_TRACE(name);
    auto s = client->Subscribe("x", WithPlugins({{name, {}}}));
    ASSERT_FALSE(s.ok());
    ExpectWireError(s.status(), absl::StatusCode::kInvalidArgument,
                    wire::INVALID_PLUGIN, name);
  }
}

// Bad SUBs each get a clear error while a publisher/subscriber pair next to
// them gets all its messages: malformed filter expressions
// (INVALID_FILTER, "at position N"); a descriptor set that is listed but is
// not one, or is missing, and a type not in a set (INVALID_PLUGIN); a set
// not listed and a registered plugin not allowed (FORBIDDEN); a listed name
// nobody registered and settings a plugin refuses (INVALID_PLUGIN). The
// client that sent them can still subscribe.
// [subscriptions] may list only plugins siftd has: a name it does not know
// stops siftd at start (exit 2) naming it, rather than surfacing later.
TEST(PluginsTest, AnUnknownSubscriptionPluginStopsSiftd) {
  SiftdOptions options;
  const std::string path = absl::StrCat(TestTmpDir(), "/unknown_sub.toml");
  WriteFile(path, "[subscriptions]\nplugins = [\"header_filter\", "
                  "\"no_such_plugin\"]\n");
  options.extra_flags = {"--config=" + path};
  auto siftd = SiftdProcess::Start(options);
  ASSERT_FALSE(siftd.ok());
  EXPECT_TRUE(absl::StrContains(siftd.status().message(), "no_such_plugin"))
      << siftd.status();
}

TEST(PluginsTest, BadSubscriptionsGetClearErrorsWhileTrafficGoesOn) {
  const std::string garbage = absl::StrCat(TestTmpDir(), "/garbage.pb");
  WriteFile(garbage, "this is not a FileDescriptorSet");
  const std::string missing = absl::StrCat(TestTmpDir(), "/missing.pb");
  auto siftd =
      StartWithConfig("bad_input", absl::StrCat(R"toml(
[subscriptions]
plugins = ["header_filter", "payload_filter", "proto_to_json", "rate_limit",
           "dedup", "sample"]
descriptor_sets = [")toml",
                                                garbage, "\", \"", missing,
                                                "\", \"", OrderSet(), "\"]\n"));
  ASSERT_NE(siftd, nullptr);
  Bystander bystander(siftd->endpoint(), "bystander.bad");
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);

  for (const char* expr : {"region ==", "(a == 1", "a === 1", "exists(",
                           "a in ()", "a == 'unterminated", "a == 1 &&", "== 1",
                           "a ^= 5", "a == 1 b", "!", "a <> 1"}) {
    SCOPED_TRACE(expr);
    auto s = client->Subscribe("bad.x", WithFilter(expr));
    ASSERT_FALSE(s.ok());
    ExpectWireError(s.status(), absl::StatusCode::kInvalidArgument,
                    wire::INVALID_FILTER, "at position");
  }
  {
    auto s = client->Subscribe("bad.x", WithFilter(std::string(5000, 'a')));
    ASSERT_FALSE(s.ok());
    ExpectWireError(s.status(), absl::StatusCode::kInvalidArgument,
                    wire::INVALID_FILTER, "too long");
  }

  struct Case {
    PluginSpec plugin;
    wire::ErrorCode code;
    std::string says;
  };
  const std::vector<Case> cases = {
      // One setting given twice (sift sub --with k=1 --with k=2): refused
      // as the config refuses it; the plugin saw only the first value,
      // the second unchecked (window_ms 0 is out of range).
      {{"dedup", {{"window_ms", "1000"}, {"window_ms", "0"}}},
       wire::INVALID_PLUGIN,
       "plugin 1 (\"dedup\"): setting \"window_ms\" is given twice"},
      {{"proto_to_json", {{"descriptor_set", garbage}, {"type", "shop.Order"}}},
       wire::INVALID_PLUGIN,
       "descriptor_set"},
      {{"proto_to_json", {{"descriptor_set", missing}, {"type", "shop.Order"}}},
       wire::INVALID_PLUGIN,
       "descriptor_set"},
      {{"proto_to_json",
        {{"descriptor_set", OrderSet()}, {"type", "shop.Nope"}}},
       wire::INVALID_PLUGIN,
       "shop.Nope"},
      {{"proto_to_json",
        {{"descriptor_set", EnvelopeSet()}, {"type", "shop.Order"}}},
       wire::FORBIDDEN,
       "not listed"},
      {{"lua_filter", {{"source", "function filter(m) return true end"}}},
       wire::FORBIDDEN,
       "not allowed in subscriptions"},
      {{"no_such_plugin", {}}, wire::INVALID_PLUGIN, "no_such_plugin"},
      {{"rate_limit", {}}, wire::INVALID_PLUGIN, "rate_per_second"},
      {{"rate_limit", {{"rate_per_second", "-1"}}},
       wire::INVALID_PLUGIN,
       "rate_per_second"},
      {{"dedup", {{"window_ms", "0"}}}, wire::INVALID_PLUGIN, "window_ms"},
      {{"sample", {{"every", "2"}, {"probability", "0.5"}}},
       wire::INVALID_PLUGIN,
       "sample"},
      {{"payload_filter", {{"format", "xml"}, {"expr", "a == 1"}}},
       wire::INVALID_PLUGIN,
       "format"},
      {{"payload_filter", {{"format", "json"}, {"expr", "a =="}}},
       wire::INVALID_PLUGIN,
       "at position"},
      {{"payload_filter",
        {{"format", "json"}, {"expr", "a == 1"}, {"colour", "red"}}},
       wire::INVALID_PLUGIN,
       "colour"},
      {{"header_filter", {{"expr", "(x"}}},
       wire::INVALID_PLUGIN,
       "at position"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.plugin.name);
    auto s = client->Subscribe("bad.x", WithPlugins({c.plugin}));
    ASSERT_FALSE(s.ok());
    ExpectWireError(s.status(),
                    c.code == wire::FORBIDDEN
                        ? absl::StatusCode::kPermissionDenied
                        : absl::StatusCode::kInvalidArgument,
                    c.code, c.says);
  }
  // A good filter with a bad plugin after it: the plugin's error.
  {
    SubscribeOptions both = WithFilter("a == '1'");
    both.plugins = {{"rate_limit", {}}};
    auto s = client->Subscribe("bad.x", both);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(protocol::WireCodeOf(s.status()), wire::INVALID_PLUGIN)
        << s.status();
  }

  // Still usable.
  auto good = Sub(*client, "bad.x", WithFilter("a == '1'"));
  ASSERT_NE(good, nullptr);
  auto pub = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  SIFT_ASSERT_OK(pub->Publish("bad.x", "no", {{"a", "2"}}));
  SIFT_ASSERT_OK(pub->Publish("bad.x", "END", {{"a", "1"}}));
  EXPECT_EQ(Payloads(Until(*good, "END")), (std::vector<std::string>{"END"}));
  bystander.Finish();
  EXPECT_TRUE(siftd->IsRunning());
}

// A library rebuilt in place is loaded anew by a reload (siftd loads a
// private copy: dlopen would hand back the old code for the same path).
// Shown by replacing a good library with one built for another ABI: the
// reload must now fail, naming the configured path.
TEST(PluginsTest, AReloadLoadsALibraryRebuiltInPlace) {
  const std::string lib = absl::StrCat(TestTmpDir(), "/libinplace.so");
  WriteFile(lib, ReadFile(ExamplePlugin()));
  auto siftd = StartWithConfig(
      "inplace", absl::StrCat("[[plugin_libraries]]\npath = \"", lib, "\"\n"));
  ASSERT_NE(siftd, nullptr);
  auto c = Connect(siftd->endpoint());
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Reload().ok());  // the same library: fine
  WriteFile(lib, ReadFile(BadPlugin("version")));
  absl::Status s = c->Reload();
  EXPECT_EQ(protocol::WireCodeOf(s), wire::INVALID_CONFIG) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), lib)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "ABI")) << s;
}

// A route stage that is still there after a reload keeps its figures.
TEST(PluginsTest, RouteRowsKeepTheirFiguresAcrossAReload) {
  const std::string toml =
      "[[routes]]\npattern = \"m.>\"\n[[routes.chain]]\nplugin = "
      "\"sample\"\nevery = 1\n";
  auto siftd = StartWithConfig("route_rows", toml);
  ASSERT_NE(siftd, nullptr);
  auto c = Connect(siftd->endpoint());
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c->PublishConfirmed("m.x", "p", kTimeout).ok());
  }
  ASSERT_TRUE(c->Reload().ok());
  ASSERT_TRUE(c->PublishConfirmed("m.x", "p", kTimeout).ok());
  auto stats = c->Stats();
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->plugins_size(), 1);
  EXPECT_EQ(stats->plugins(0).calls(), 4u);
}

// What a subscription's plugins make is checked before it is delivered: a
// topic the broker would refuse, or one under $sift., is not delivered
// (counted as plugin_error).
TEST(PluginsTest, SubscriptionChainOutputsAreChecked) {
  auto siftd = StartWithConfig(
      "sub_outputs",
      "[subscriptions]\nplugins = [\"lua_transform\"]\n");
  ASSERT_NE(siftd, nullptr);
  auto c = Connect(siftd->endpoint());
  ASSERT_NE(c, nullptr);
  std::vector<std::unique_ptr<Subscription>> subs;
  for (const char* topic : {"not a topic!!", "", "$sift.deadletter.fake",
                            "fine.topic"}) {
    SubscribeOptions o;
    o.plugins.push_back(
        {"lua_transform",
         {{"source", absl::StrCat("function transform(m) return {topic = \"",
                                  topic, "\"} end")}}});
    auto s = c->Subscribe("a.>", o);
    ASSERT_TRUE(s.ok()) << s.status();
    subs.push_back(*std::move(s));
  }
  ASSERT_TRUE(c->PublishConfirmed("a.b", "hi", kTimeout).ok());
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(subs[i]->Next(absl::Milliseconds(300)).status().code(),
              absl::StatusCode::kDeadlineExceeded)
        << i;
  }
  auto fine = subs[3]->Next(kTimeout);
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_EQ(fine->topic(), "fine.topic");
  auto stats = c->Stats();
  ASSERT_TRUE(stats.ok());
  // The two bad topics count under the router's reason, $sift. as a
  // plugin error.
  EXPECT_EQ(Drops(*stats, "invalid_topic"), 2u);
  EXPECT_EQ(Drops(*stats, "plugin_error"), 1u);
}

// A retained publish is kept as its route chain made it: redacted values
// stay redacted for later subscribers, and what the chain drops is not
// retained at all.
TEST(PluginsTest, RetainedValuesAreKeptAsTheRouteChainMadeThem) {
  auto siftd = StartWithConfig("retained_routes", R"toml(
[[routes]]
pattern = "r.>"
[[routes.chain]]
plugin = "header_filter"
expr = "keep == 'yes'"
[[routes.chain]]
plugin = "redact"
format = "json"
fields = "secret"
mode = "mask"
)toml");
  ASSERT_NE(siftd, nullptr);
  auto c = Connect(siftd->endpoint());
  ASSERT_NE(c, nullptr);
  PublishOptions keep;
  keep.retain = true;
  keep.headers = {{"keep", "yes"}};
  PublishOptions drop = keep;
  drop.headers = {{"keep", "no"}};
  ASSERT_TRUE(c->PublishConfirmedWith("r.a", R"({"secret":"s3"})", keep).ok());
  ASSERT_TRUE(c->PublishConfirmedWith("r.b", R"({"secret":"s4"})", drop).ok());
  auto sub = c->Subscribe("r.>");
  ASSERT_TRUE(sub.ok());
  auto m = (*sub)->Next(kTimeout);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->topic(), "r.a");
  EXPECT_TRUE(m->retained());
  EXPECT_EQ(m->payload(), R"({"secret":"***"})");
  EXPECT_EQ((*sub)->Next(absl::Milliseconds(300)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

// A route chain's output the broker refuses (here: headers past
// max_headers once header_set added one) is dead-lettered, named as the
// router's refusal, not lost.
TEST(PluginsTest, ARouteOutputTheBrokerRefusesIsDeadLettered) {
  auto siftd = StartWithConfig("refused_output", R"toml(
max_headers = 2
[[routes]]
pattern = "h.>"
[[routes.chain]]
plugin = "header_set"
"set.added" = "1"
)toml");
  ASSERT_NE(siftd, nullptr);
  auto c = Connect(siftd->endpoint());
  ASSERT_NE(c, nullptr);
  auto dead = c->Subscribe("$sift.deadletter.>");
  ASSERT_TRUE(dead.ok());
  ASSERT_TRUE(c->PublishConfirmed("h.x", "p", Headers{{"a", "1"}, {"b", "2"}},
                                  kTimeout)
                  .ok());
  auto d = (*dead)->Next(kTimeout);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->topic(), "$sift.deadletter.h.x");
  EXPECT_EQ(d->header("sift-plugin"), "router");
  const std::string reason(d->header("sift-reason").value_or(""));
  EXPECT_TRUE(absl::StrContains(reason, "at most 2")) << reason;
  // The headers were what the broker refused: the dead letter leaves them
  // out, so that it stays within what a client may receive.
  EXPECT_EQ(d->header("added"), std::nullopt);
  EXPECT_EQ(d->header("a"), std::nullopt);
  EXPECT_EQ(d->payload(), "p");
}

// Every output the broker refuses is counted once, under its reason, and
// dead-lettered once, carrying the output less the field refused, so that
// the dead letter is itself routable and within a client's limits: an
// oversized payload or a bad reply_to made the dead letter refused too
// (counted twice, and nothing dead-lettered), and too many headers went
// out with the dead letter (103 of a 64-header limit). Route chains and
// subscription chains alike.
TEST(PluginsTest, EveryRefusedOutputIsCountedOnceAndDeadLetteredOnce) {
  constexpr char kScript[] = R"lua(
function transform(m)
  if m.payload == "big" then return {payload = string.rep("x", 3000)} end
  if m.payload == "replyto" then return {reply_to = "bad..x"} end
  if m.payload == "headers" then
    local h = {}
    for i = 1, 5 do h[#h + 1] = {"h" .. i, "v"} end
    return {headers = h}
  end
  if m.payload == "reserved" then return {topic = "$sift.x"} end
  if m.payload == "all" then
    local h = {}
    for i = 1, 5 do h[#h + 1] = {"h" .. i, "v"} end
    return {topic = "bad..t", reply_to = "bad..r",
            payload = string.rep("q", 1500), headers = h}
  end
  return m
end
)lua";
  auto siftd = StartWithConfig(
      "refused_kinds",
      absl::StrCat("max_payload_bytes = 1000\nmax_headers = 4\n"
                   "[subscriptions]\nplugins = [\"lua_transform\"]\n"
                   "[[routes]]\npattern = \"r.>\"\n[[routes.chain]]\n"
                   "plugin = \"lua_transform\"\nsource = '''",
                   kScript, "'''\n"));
  ASSERT_NE(siftd, nullptr);
  auto c = Connect(siftd->endpoint());
  ASSERT_NE(c, nullptr);
  auto dead = c->Subscribe("$sift.deadletter.>");
  ASSERT_TRUE(dead.ok()) << dead.status();
  SubscribeOptions o;
  o.plugins.push_back({"lua_transform", {{"source", kScript}}});
  auto transformed = c->Subscribe("s.>", o);
  ASSERT_TRUE(transformed.ok()) << transformed.status();

  struct Case {
    std::string payload;
    std::string reason;  // the drop reason counted
  };
  const std::vector<Case> cases = {{"big", "payload_too_large"},
                                   {"replyto", "invalid_topic"},
                                   {"headers", "headers_too_large"},
                                   {"reserved", "plugin_error"},
                                   {"all", "invalid_topic"}};
  for (const char* prefix : {"r", "s"}) {
    for (const Case& k : cases) {
      SCOPED_TRACE(absl::StrCat(prefix, " ", k.payload));
      auto before = c->Stats();
      ASSERT_TRUE(before.ok()) << before.status();
      const std::string topic = absl::StrCat(prefix, ".x");
      SIFT_ASSERT_OK(c->PublishConfirmed(topic, k.payload, kTimeout));
      auto d = (*dead)->Next(kTimeout);
      ASSERT_TRUE(d.ok()) << d.status();
      EXPECT_EQ(d->topic(), absl::StrCat("$sift.deadletter.", topic));
      EXPECT_EQ(d->header("sift-plugin"), "router");
      EXPECT_EQ(d->header("sift-original-topic"), topic);
      EXPECT_LE(d->headers().size(), 4u + 3u);
      EXPECT_LE(d->payload().size(), 1000u);
      EXPECT_EQ(d->reply_to(), "");
      if (k.payload == "big") {
        EXPECT_EQ(d->payload(), "");
        const std::string reason(d->header("sift-reason").value_or(""));
        EXPECT_TRUE(absl::StrContains(reason, "3000 bytes")) << reason;
      }
      if (k.payload == "headers") {
        EXPECT_EQ(d->header("h1"), std::nullopt);
      }
      // The reason names every field left out, not only the one refused
      // first (a second trial).
      const std::string reason(d->header("sift-reason").value_or(""));
      if (k.payload == "replyto" || k.payload == "all") {
        EXPECT_TRUE(absl::StrContains(
            reason, "left out of this dead letter: reply_to ("))
            << reason;
      }
      if (k.payload == "all") {
        EXPECT_TRUE(absl::StrContains(reason, "invalid topic")) << reason;
        EXPECT_TRUE(absl::StrContains(
            reason, "the payload (1500 bytes, over max_payload_bytes)"))
            << reason;
        EXPECT_TRUE(absl::StrContains(reason, "the headers (")) << reason;
        EXPECT_EQ(d->payload(), "");
        EXPECT_EQ(d->header("h1"), std::nullopt);
      }
      // Nothing more: one dead letter per refused output.
      EXPECT_EQ((*dead)->Next(absl::Milliseconds(200)).status().code(),
                absl::StatusCode::kDeadlineExceeded);
      auto after = c->Stats();
      ASSERT_TRUE(after.ok()) << after.status();
      EXPECT_EQ(Drops(*after, k.reason) - Drops(*before, k.reason), 1u);
    }
  }
  EXPECT_EQ((*transformed)->Next(absl::Milliseconds(200)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

// [[message_types]] gives protobuf plugins the type of the topics a pattern
// covers: a subscription (and a route) names no type or descriptor set, and
// the operator's set need not be listed in [subscriptions]; a pattern not
// covered still needs its own type.
TEST(PluginsTest, MessageTypesGiveProtobufPluginsTheTopicsType) {
  auto siftd = StartWithConfig(
      "message_types",
      absl::StrCat("[[message_types]]\npattern = \"pay.>\"\ntype = "
                   "\"shop.Order\"\ndescriptor_set = \"",
                   OrderSet(),
                   "\"\n[subscriptions]\nplugins = [\"proto_to_json\"]\n"));
  ASSERT_NE(siftd, nullptr);
  auto c = Connect(siftd->endpoint());
  ASSERT_NE(c, nullptr);
  SubscribeOptions o;
  o.plugins.push_back({"proto_to_json", {}});
  auto json = c->Subscribe("pay.proto", o);
  ASSERT_TRUE(json.ok()) << json.status();
  SIFT_ASSERT_OK(c->PublishConfirmed("pay.proto", OrderBytes(), kTimeout));
  auto m = (*json)->Next(kTimeout);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->payload(), kOrderJson);
  // Outside pay.>: the plugin still needs its type.
  auto other = c->Subscribe("other.>", o);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(protocol::WireCodeOf(other.status()), wire::INVALID_PLUGIN)
      << other.status();
}

}  // namespace
}  // namespace sift::test
