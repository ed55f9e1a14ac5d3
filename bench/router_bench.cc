// Benchmarks for one whole route through the routing core
// (broker/router/router.h), without sockets: Router::Publish of one topic
// (validation, subject-tree match through the cache, queue-group pick,
// counters), as the broker's event loop does it for every PUB. Run before
// changing the router:
//
//   bazel run //bench:router_bench -- --benchmark_min_time=0.2
//
// Shapes (first argument): 0 = one matching subscriber, 1 = fan-out to 4
// subscribers (4 clients), 2 = a queue group of 4 members (4 clients).
// Second argument: how many non-matching wildcard subscriptions
// ("noise.<i>.*", spread over 10 other clients) the router also holds.

#include <cstdint>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "broker/router/router.h"

namespace sift {
namespace {

constexpr char kTopic[] = "bench.topic";
constexpr int kNoiseClients = 10;

enum Shape : int { kOne = 0, kFanOut4 = 1, kQueueGroup4 = 2 };

// Fills the router; returns how many targets a publish on kTopic must yield.
size_t Setup(Router* router, int shape, int noise) {
  std::vector<Router::ClientHandle> noise_clients;
  for (int c = 0; c < kNoiseClients; ++c) {
    noise_clients.push_back(router->AddClient("noise"));
  }
  for (int i = 0; i < noise; ++i) {
    const std::string pattern = "noise." + std::to_string(i) + ".*";
    absl::Status s = router->Subscribe(noise_clients[i % kNoiseClients],
                                       static_cast<uint64_t>(i) + 1, pattern,
                                       "");
    if (!s.ok()) return 0;
  }
  const int members = shape == kOne ? 1 : 4;
  for (int m = 0; m < members; ++m) {
    const Router::ClientHandle c = router->AddClient("sub");
    absl::Status s = router->Subscribe(c, 1, kTopic,
                                       shape == kQueueGroup4 ? "workers" : "");
    if (!s.ok()) return 0;
  }
  return shape == kFanOut4 ? 4 : 1;
}

void BM_RouterPublish(benchmark::State& state) {
  const int shape = static_cast<int>(state.range(0));
  const int noise = static_cast<int>(state.range(1));
  Router router{RouterLimits{}};
  const size_t want = Setup(&router, shape, noise);
  std::vector<Router::Target> targets;
  targets.reserve(16);
  absl::Status first = router.Publish(kTopic, {}, {}, 128, &targets);
  if (want == 0 || !first.ok() || targets.size() != want) {
    state.SkipWithError("router setup failed or publish routed wrongly");
    return;
  }
  size_t delivered = 0;
  for (auto _ : state) {
    absl::Status s = router.Publish(kTopic, {}, {}, 128, &targets);
    benchmark::DoNotOptimize(s);
    delivered += targets.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["deliveries/s"] = benchmark::Counter(
      static_cast<double>(delivered), benchmark::Counter::kIsRate);
  state.SetLabel(shape == kOne      ? "1 subscriber"
                 : shape == kFanOut4 ? "fan-out 4"
                                     : "queue group of 4");
}
BENCHMARK(BM_RouterPublish)
    ->ArgNames({"shape", "noise"})
    ->ArgsProduct({{kOne, kFanOut4, kQueueGroup4}, {0, 10000}});

// A publish that matches nothing (counted as a no_subscribers drop) with the
// 10,000 noise subscriptions in place.
void BM_RouterPublishMiss(benchmark::State& state) {
  Router router{RouterLimits{}};
  if (Setup(&router, kOne, 10000) == 0) {
    state.SkipWithError("router setup failed");
    return;
  }
  std::vector<Router::Target> targets;
  targets.reserve(16);
  for (auto _ : state) {
    absl::Status s = router.Publish("bench.other", {}, {}, 128, &targets);
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RouterPublishMiss);

}  // namespace
}  // namespace sift
