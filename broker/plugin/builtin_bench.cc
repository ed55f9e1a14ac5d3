// Cost per message of each simple built-in plugin (builtins.h), on a typical
// small message: topic "orders.eu.created", 2 headers, a 100-byte payload.
//
//   bazel run //broker/plugin:builtin_bench -- --benchmark_min_time=0.2
//
// Every case builds the Message as the broker would for a chain (headers
// copied, topic and payload borrowed) and runs one plugin on it; BM_EmptyChain
// builds the Message and runs nothing, so a plugin's own cost is its figure
// minus that one (BM_PassThroughTransform: a transform's, which also moves
// the Message into its output vector). Time is a simulated clock advancing 1 us
// per message. Run this before changing a built-in's per-message path.

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "broker/plugin/dedup.h"
#include "broker/plugin/enrich.h"
#include "broker/plugin/header_edit.h"
#include "broker/plugin/message.h"
#include "broker/plugin/plugin.h"
#include "broker/plugin/rate_limit.h"
#include "broker/plugin/sample.h"
#include "broker/plugin/topic_map.h"

namespace sift::plugin {
namespace {

using Config = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kTopic = "orders.eu.created";

const std::string& Payload() {
  static const std::string* payload = new std::string(100, 'p');
  return *payload;
}

// The two headers; `id` is the message id (short enough to stay inline in
// std::string, as the other values are).
std::vector<HeaderField> Headers(std::string id = "m-000000001") {
  return {{"sift-msg-id", std::move(id)}, {"tenant", "eu-west"}};
}

// A simulated clock: 1 us per message.
class Clock {
 public:
  Clock() { context_.now = absl::FromUnixSeconds(1700000000); }
  const CallContext& Next() {
    context_.now += absl::Microseconds(1);
    return context_;
  }

 private:
  CallContext context_;
};

void BM_EmptyChain(benchmark::State& state) {
  const std::vector<HeaderField> headers = Headers();
  Clock clock;
  for (auto _ : state) {
    Message m(kTopic, "", headers, Payload());
    benchmark::DoNotOptimize(clock.Next());
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_EmptyChain);

// The harness of the transform cases with a transform that emits its input
// unchanged: the Message's move into the output vector, and its destruction
// there. A transform's own cost is its figure minus this one.
class PassThroughFactory : public TransformFactory {
 public:
  std::string_view name() const override { return "pass_through"; }
  absl::StatusOr<std::unique_ptr<Transform>> Create(
      const PluginConfig& config) const override {
    class PassThrough : public Transform {
     public:
      absl::Status Apply(Message message, const CallContext& context,
                         std::vector<Message>* out) override {
        out->push_back(std::move(message));
        return absl::OkStatus();
      }
    };
    return std::make_unique<PassThrough>();
  }
};

void RunTransform(benchmark::State& state, const TransformFactory& factory,
                  Config config, std::string_view topic = kTopic) {
  auto t = factory.Create(PluginConfig(std::move(config)));
  if (!t.ok()) {
    state.SkipWithError(std::string(t.status().message()).c_str());
    return;
  }
  const std::vector<HeaderField> headers = Headers();
  Clock clock;
  std::vector<Message> out;
  for (auto _ : state) {
    out.clear();
    Message m(topic, "", headers, Payload());
    if (!(*t)->Apply(std::move(m), clock.Next(), &out).ok()) {
      state.SkipWithError("transform failed");
      return;
    }
    benchmark::DoNotOptimize(out.data());
  }
}

// Runs a filter; `ids` > 0 gives each message one of `ids` distinct message
// ids in turn (for dedup), else all carry the same one.
void RunFilter(benchmark::State& state, const FilterFactory& factory,
               Config config, int ids = 0) {
  auto f = factory.Create(PluginConfig(std::move(config)));
  if (!f.ok()) {
    state.SkipWithError(std::string(f.status().message()).c_str());
    return;
  }
  std::vector<std::vector<HeaderField>> headers;
  for (int i = 0; i < std::max(ids, 1); ++i) {
    headers.push_back(Headers("m-" + std::to_string(100000000 + i)));
  }
  Clock clock;
  size_t next = 0;
  int64_t kept = 0;
  for (auto _ : state) {
    Message m(kTopic, "", headers[next], Payload());
    if (++next == headers.size()) next = 0;
    absl::StatusOr<Verdict> v = (*f)->Apply(m, clock.Next());
    kept += v.ok() && v->keep;
    benchmark::DoNotOptimize(v);
  }
  state.counters["kept"] =
      benchmark::Counter(static_cast<double>(kept) / state.iterations());
}

void BM_PassThroughTransform(benchmark::State& state) {
  RunTransform(state, PassThroughFactory(), {});
}
BENCHMARK(BM_PassThroughTransform);

void BM_TopicMap_Match(benchmark::State& state) {
  RunTransform(state, TopicMapFactory(),
               {{"from", "orders.*.created"}, {"to", "audit.orders.$1"}});
}
BENCHMARK(BM_TopicMap_Match);

void BM_TopicMap_Miss(benchmark::State& state) {
  RunTransform(state, TopicMapFactory(),
               {{"from", "orders.*.deleted"}, {"to", "audit.orders.$1"}});
}
BENCHMARK(BM_TopicMap_Miss);

void BM_TopicMap_Rest(benchmark::State& state) {
  RunTransform(state, TopicMapFactory(),
               {{"from", "orders.>"}, {"to", "archive.$1"}});
}
BENCHMARK(BM_TopicMap_Rest);

void BM_HeaderSet_Two(benchmark::State& state) {
  RunTransform(state, HeaderSetFactory(),
               {{"set.source", "gateway"}, {"set.tenant", "eu"}});
}
BENCHMARK(BM_HeaderSet_Two);

void BM_HeaderRemove_One(benchmark::State& state) {
  RunTransform(state, HeaderRemoveFactory(), {{"keys", "tenant"}});
}
BENCHMARK(BM_HeaderRemove_One);

void BM_Enrich_UnixMs(benchmark::State& state) {
  RunTransform(state, EnrichFactory(), {});
}
BENCHMARK(BM_Enrich_UnixMs);

void BM_Enrich_Rfc3339(benchmark::State& state) {
  RunTransform(state, EnrichFactory(), {{"time_format", "rfc3339"}});
}
BENCHMARK(BM_Enrich_Rfc3339);

void BM_Enrich_SeqOnly(benchmark::State& state) {
  RunTransform(state, EnrichFactory(), {{"received_at", "false"}});
}
BENCHMARK(BM_Enrich_SeqOnly);

// 1000 topics in turn through a 100-topic LRU: every message evicts one.
void BM_Enrich_SeqEvicting(benchmark::State& state) {
  auto t = EnrichFactory().Create(
      PluginConfig({{"received_at", "false"}, {"max_topics", "100"}}));
  std::vector<std::string> topics;
  for (int i = 0; i < 1000; ++i)
    topics.push_back("orders.eu" + std::to_string(i));
  const std::vector<HeaderField> headers = Headers();
  Clock clock;
  std::vector<Message> out;
  size_t next = 0;
  for (auto _ : state) {
    out.clear();
    Message m(topics[next], "", headers, Payload());
    if (++next == topics.size()) next = 0;
    (void)(*t)->Apply(std::move(m), clock.Next(), &out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_Enrich_SeqEvicting);

// Distinct ids, more than max_ids: each is new when it comes (kept), and
// each message evicts the oldest id.
void BM_Dedup_NewIds(benchmark::State& state) {
  RunFilter(state, DedupFactory(), {}, 1 << 18);
}
BENCHMARK(BM_Dedup_NewIds);

void BM_Dedup_Duplicate(benchmark::State& state) {
  RunFilter(state, DedupFactory(), {});
}
BENCHMARK(BM_Dedup_Duplicate);

void BM_RateLimit_Keeping(benchmark::State& state) {
  RunFilter(state, RateLimitFactory(), {{"rate_per_second", "2000000"}});
}
BENCHMARK(BM_RateLimit_Keeping);

void BM_RateLimit_Dropping(benchmark::State& state) {
  RunFilter(state, RateLimitFactory(), {{"rate_per_second", "1000"}});
}
BENCHMARK(BM_RateLimit_Dropping);

void BM_Sample_Every10(benchmark::State& state) {
  RunFilter(state, SampleFactory(), {{"every", "10"}});
}
BENCHMARK(BM_Sample_Every10);

void BM_Sample_Probability(benchmark::State& state) {
  RunFilter(state, SampleFactory(), {{"probability", "0.1"}});
}
BENCHMARK(BM_Sample_Probability);

}  // namespace
}  // namespace sift::plugin
