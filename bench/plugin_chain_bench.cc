// Cost per message of plugins as the broker runs them (broker/plugin/
// chain_io.h RunChain: headers decoded into a plugin Message, the chain,
// the result encoded back into wire form), beside the no-plugin path (the
// router's publish of the same message), all in one run:
//
//   bazel run -c opt //bench:plugin_chain_bench -- --benchmark_min_time=0.2
//
// BM_NoPlugin is what every message pays today (Router::Publish to one
// subscriber); BM_Chain/<plugin> is what a message pays on top of it when a
// route or subscription chain of that one plugin runs on it; "empty" is the
// chain machinery alone. The message: topic "orders.eu.created", headers
// region=eu, priority=7, sift-msg-id=<n>, a 100-byte JSON payload. bench/
// plugin_costs.sh turns the output into the table in BENCHMARKS.md.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"
#include "broker/plugin/chain_io.h"
#include "broker/plugin/plugin_set.h"
#include "broker/protocol/headers.h"
#include "broker/router/router.h"

namespace sift {
namespace {

constexpr char kTopic[] = "orders.eu.created";

std::string Payload() {
  std::string p =
      "{\"id\": 1234, \"amount\": 150, \"customer\": {\"tier\": \"gold\", "
      "\"name\": \"Ada\"}, \"note\": \"";
  while (p.size() < 98) p.push_back('x');
  return p + "\"}";
}

std::string Headers(uint64_t n) {
  std::vector<std::pair<std::string, std::string>> h = {
      {"region", "eu"}, {"priority", "7"}, {"sift-msg-id", std::to_string(n)}};
  return protocol::EncodeHeaders(h);
}

void BM_NoPlugin(benchmark::State& state) {
  Router router{RouterLimits{}};
  const Router::ClientHandle c = router.AddClient("sub");
  if (!router.Subscribe(c, 1, "orders.>", "").ok()) {
    state.SkipWithError("subscribe failed");
    return;
  }
  const std::string headers = Headers(1);
  const std::string payload = Payload();
  std::vector<Router::Target> targets;
  targets.reserve(4);
  for (auto _ : state) {
    absl::Status s =
        router.Publish(kTopic, {}, headers, payload.size(), &targets);
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NoPlugin);

struct Case {
  const char* label;
  std::vector<plugin::StageSpec> stages;
};

plugin::StageSpec Stage(std::string name,
                        std::vector<std::pair<std::string, std::string>> kv) {
  plugin::StageSpec spec;
  spec.plugin = std::move(name);
  for (auto& [k, v] : kv) spec.config.Add(std::move(k), std::move(v));
  return spec;
}

const std::vector<Case>& Cases() {
  static const auto* cases = new std::vector<Case>{
      {"empty", {}},
      {"header_filter", {Stage("header_filter",
                               {{"expr", "region == 'eu' && priority >= 5"}})}},
      {"payload_filter_json",
       {Stage("payload_filter",
              {{"format", "json"},
               {"expr", "amount > 100 && customer.tier == 'gold'"}})}},
      {"topic_map", {Stage("topic_map", {{"from", "orders.*.created"},
                                         {"to", "audit.orders.$1"}})}},
      {"header_set", {Stage("header_set", {{"set.x-audit", "1"}})}},
      {"header_remove", {Stage("header_remove", {{"keys", "priority"}})}},
      {"enrich", {Stage("enrich", {})}},
      // A 1 ms window: ids (4096 in turn, 1 us apart) have expired when
      // they come round again, so every message is new to it.
      {"dedup", {Stage("dedup", {{"window_ms", "1"}})}},
      {"rate_limit", {Stage("rate_limit", {{"rate_per_second", "1e9"}})}},
      {"sample", {Stage("sample", {{"every", "1"}})}},
      {"redact_json",
       {Stage("redact", {{"format", "json"},
                         {"fields", "customer.name"},
                         {"mode", "mask"}})}},
      {"lua_filter",
       {Stage("lua_filter",
              {{"source",
                "function filter(m) return m.topic:sub(1, 7) == 'orders.' "
                "end"}})}},
  };
  return *cases;
}

void BM_Chain(benchmark::State& state) {
  const Case& c = Cases()[static_cast<size_t>(state.range(0))];
  state.SetLabel(c.label);
  auto set = plugin::PluginSet::Build({}, topic::Limits{}, nullptr);
  if (!set.ok()) {
    state.SkipWithError("plugin set");
    return;
  }
  auto chain = plugin::Chain::Build((*set)->registry(), c.stages, "bench",
                                    [](std::string_view, size_t) {
                                      return nullptr;
                                    });
  if (!chain.ok()) {
    state.SkipWithError(std::string(chain.status().message()).c_str());
    return;
  }
  const std::string payload = Payload();
  // dedup sees a new id per message (its common case); others the same.
  std::vector<std::string> headers;
  for (uint64_t i = 0; i < 4096; ++i) headers.push_back(Headers(i));
  std::vector<plugin::OutMessage> out;
  plugin::CallContext context;
  context.now = absl::Now();
  uint64_t n = 0;
  uint64_t passed = 0;
  for (auto _ : state) {
    plugin::RunChain(**chain, kTopic, {}, headers[n++ & 4095], payload,
                     context, &out);
    passed += out.size();
    context.now += absl::Microseconds(1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["passed"] =
      static_cast<double>(passed) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_Chain)->DenseRange(0, 11);

// The protobuf plugins need a descriptor set: $SIFT_BENCH_DESCRIPTOR_SET,
// the shop.Order set of broker/plugin/testdata (bench/plugin_costs.sh sets
// it). Their message is a shop.Order of about 40 bytes, or its JSON.
struct ProtoCase {
  const char* label;
  const char* plugin;
  bool json_input;  // the payload is the JSON form
  std::vector<std::pair<std::string, std::string>> extra;
};

const std::vector<ProtoCase>& ProtoCases() {
  static const auto* cases = new std::vector<ProtoCase>{
      {"payload_filter_protobuf", "payload_filter", false,
       {{"format", "protobuf"},
        {"expr", "amount > 100 && customer.tier == 'TIER_GOLD'"}}},
      {"proto_to_json", "proto_to_json", false, {}},
      {"json_to_proto", "json_to_proto", true, {}},
      {"redact_protobuf", "redact", false,
       {{"format", "protobuf"}, {"fields", "customer.name"}, {"mode", "mask"}}},
  };
  return *cases;
}

constexpr char kOrderJson[] =
    R"({"id":"o-1","amount":150,"quantity":2,)"
    R"("customer":{"name":"Ada","tier":"TIER_GOLD"}})";

void BM_ProtoChain(benchmark::State& state) {
  const ProtoCase& c = ProtoCases()[static_cast<size_t>(state.range(0))];
  state.SetLabel(c.label);
  const char* set_path = std::getenv("SIFT_BENCH_DESCRIPTOR_SET");
  if (set_path == nullptr) {
    state.SkipWithError("set SIFT_BENCH_DESCRIPTOR_SET (bench/plugin_costs.sh)");
    return;
  }
  auto set = plugin::PluginSet::Build({}, topic::Limits{}, nullptr);
  if (!set.ok()) {
    state.SkipWithError("plugin set");
    return;
  }
  auto build = [&](const std::string& name,
                   std::vector<std::pair<std::string, std::string>> kv) {
    kv.emplace_back("type", "shop.Order");
    kv.emplace_back("descriptor_set", set_path);
    return plugin::Chain::Build((*set)->registry(), {Stage(name, kv)}, "bench",
                                [](std::string_view, size_t) {
                                  return nullptr;
                                });
  };
  // The protobuf payload: the JSON form through json_to_proto, once.
  auto to_proto = build("json_to_proto", {});
  auto chain = build(c.plugin, c.extra);
  if (!to_proto.ok() || !chain.ok()) {
    state.SkipWithError("chain build failed");
    return;
  }
  std::vector<plugin::OutMessage> out;
  plugin::CallContext context;
  context.now = absl::Now();
  plugin::RunChain(**to_proto, kTopic, {}, {}, kOrderJson, context, &out);
  if (out.size() != 1) {
    state.SkipWithError("json_to_proto failed");
    return;
  }
  const std::string payload =
      c.json_input ? std::string(kOrderJson) : std::string(out[0].payload);
  const std::string headers = Headers(1);
  uint64_t passed = 0;
  for (auto _ : state) {
    plugin::RunChain(**chain, kTopic, {}, headers, payload, context, &out);
    passed += out.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["passed"] =
      static_cast<double>(passed) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_ProtoChain)->DenseRange(0, 3);

}  // namespace
}  // namespace sift
