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

}  // namespace
}  // namespace sift
