// Cost per message of the payload plugins (payload_plugins.h) on a small
// order (~100 bytes as JSON, ~60 as protobuf): what a route chain with one of
// them adds to each matching message.
//
//   bazel run //broker/plugin:payload_bench
//
// Each iteration is one Apply on a Message over the same borrowed payload,
// as the routing thread makes it per message (transforms get a fresh Message
// and emit it, so the output allocations are counted).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"
#include "broker/plugin/payload_plugins.h"
#include "broker/plugin/payload_testing.h"

namespace sift::plugin {
namespace {

constexpr char kOrderText[] =
    "id: \"o-10017\" amount: 149.5 quantity: 3 paid: true "
    "customer { name: \"Ann Smith\" tier: TIER_GOLD "
    "email: \"ann@example.com\" address { city: \"Oslo\" } }";

constexpr char kOrderJson[] =
    R"({"id":"o-10017","amount":149.5,"quantity":3,"paid":true,)"
    R"("customer":{"name":"Ann Smith","tier":"gold",)"
    R"("email":"ann@example.com","address":{"city":"Oslo"}}})";

constexpr char kExpr[] = "customer.tier == 'gold' && amount >= 100";
constexpr char kProtoExpr[] = "customer.tier == 'TIER_GOLD' && amount >= 100";

using KV = std::vector<std::pair<std::string, std::string>>;

PluginConfig ProtoConfig(KV more) {
  KV kv = {{"type", "shop.Order"}, {"descriptor_set", testing::kOrderSet}};
  for (auto& e : more) kv.push_back(std::move(e));
  return PluginConfig(std::move(kv));
}

void RunFilter(benchmark::State& state, const PluginConfig& config,
               const std::string& payload) {
  auto filter = MakePayloadFilterFactory()->Create(config);
  if (!filter.ok()) {
    state.SkipWithError(std::string(filter.status().message()).c_str());
    return;
  }
  const Message message("orders.new", "", {}, payload);
  const CallContext context;
  for (auto _ : state) {
    auto verdict = (*filter)->Apply(message, context);
    benchmark::DoNotOptimize(verdict);
  }
  state.SetBytesProcessed(state.iterations() * payload.size());
  state.SetLabel(std::to_string(payload.size()) + " B payload");
}

void RunTransform(benchmark::State& state,
                  std::unique_ptr<TransformFactory> factory,
                  const PluginConfig& config, const std::string& payload) {
  auto transform = factory->Create(config);
  if (!transform.ok()) {
    state.SkipWithError(std::string(transform.status().message()).c_str());
    return;
  }
  const CallContext context;
  std::vector<Message> out;
  for (auto _ : state) {
    out.clear();
    absl::Status s =
        (*transform)
            ->Apply(Message("orders.new", "", {}, payload), context, &out);
    benchmark::DoNotOptimize(s);
  }
  if (out.size() != 1) state.SkipWithError("transform emitted no message");
  state.SetBytesProcessed(state.iterations() * payload.size());
  state.SetLabel(std::to_string(payload.size()) + " B payload");
}

void BM_PayloadFilterJson(benchmark::State& state) {
  RunFilter(state, PluginConfig({{"format", "json"}, {"expr", kExpr}}),
            kOrderJson);
}
BENCHMARK(BM_PayloadFilterJson);

void BM_PayloadFilterProtobuf(benchmark::State& state) {
  RunFilter(state, ProtoConfig({{"format", "protobuf"}, {"expr", kProtoExpr}}),
            testing::Encode("shop.Order", kOrderText));
}
BENCHMARK(BM_PayloadFilterProtobuf);

void BM_ProtoToJson(benchmark::State& state) {
  RunTransform(state, MakeProtoToJsonFactory(), ProtoConfig({}),
               testing::Encode("shop.Order", kOrderText));
}
BENCHMARK(BM_ProtoToJson);

void BM_JsonToProto(benchmark::State& state) {
  // The JSON proto_to_json writes for kOrderText.
  const std::string json =
      R"({"id":"o-10017","amount":149.5,"quantity":"3","paid":true,)"
      R"("customer":{"name":"Ann Smith","tier":"TIER_GOLD",)"
      R"("email":"ann@example.com","address":{"city":"Oslo"}}})";
  RunTransform(state, MakeJsonToProtoFactory(), ProtoConfig({}), json);
}
BENCHMARK(BM_JsonToProto);

void BM_RedactJson(benchmark::State& state) {
  RunTransform(state, MakeRedactFactory(),
               PluginConfig({{"format", "json"},
                             {"mode", "mask"},
                             {"fields", "customer.email,customer.name"}}),
               kOrderJson);
}
BENCHMARK(BM_RedactJson);

void BM_RedactProtobuf(benchmark::State& state) {
  RunTransform(state, MakeRedactFactory(),
               ProtoConfig({{"format", "protobuf"},
                            {"mode", "mask"},
                            {"fields", "customer.email,customer.name"}}),
               testing::Encode("shop.Order", kOrderText));
}
BENCHMARK(BM_RedactProtobuf);

}  // namespace
}  // namespace sift::plugin
