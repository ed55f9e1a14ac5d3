// Benchmarks for the subject tree (broker/topic/subject_tree.h) and topic
// validation: the per-publish routing work. Run before changing either:
//
//   bazel run //bench:subject_tree_bench -- --benchmark_min_time=0.05
//
// Subscriptions are "literal-ish" and distinct: for subscription i, with
// a = i % 100, b = i / 100 % 100, c = i / 10000,
//   i % 20 == 0:  "acct<a>.*.ev<c>"          (one-token wildcard)
//   i % 20 == 1:  "acct<a>.dev<b>.>"         (trailing wildcard)
//   otherwise:    "acct<a>.dev<b>.ev<c>"     (literal)
// A "hit" topic is "acct<a>.dev<b>.ev<c>" for a subscribed i; it matches its
// literal subscription (if any) and the wildcard ones over it. A "miss" topic
// is either "acct<a>.dev<b>", which walks two levels before finding nothing,
// or "zz<k>.dev.ev", which misses at the root.

#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"
#include "broker/topic/subject_tree.h"
#include "broker/topic/topic.h"

namespace sift::topic {
namespace {

void PatternFor(uint32_t i, std::string* out) {
  const uint32_t a = i % 100, b = i / 100 % 100, c = i / 10000;
  out->clear();
  switch (i % 20) {
    case 0:
      *out = "acct" + std::to_string(a) + ".*.ev" + std::to_string(c);
      break;
    case 1:
      *out = "acct" + std::to_string(a) + ".dev" + std::to_string(b) + ".>";
      break;
    default:
      *out = "acct" + std::to_string(a) + ".dev" + std::to_string(b) + ".ev" +
             std::to_string(c);
  }
}

std::string HitTopic(uint32_t i) {
  return "acct" + std::to_string(i % 100) + ".dev" +
         std::to_string(i / 100 % 100) + ".ev" + std::to_string(i / 10000);
}

std::string MissTopic(uint32_t i, uint32_t k) {
  // Alternate a deep miss and a root miss.
  if (k % 2 == 0) {
    return "acct" + std::to_string(i % 100) + ".dev" +
           std::to_string(i / 100 % 100);
  }
  return "zz" + std::to_string(k) + ".dev.ev";
}

void Fill(SubjectTree* tree, uint32_t n) {
  std::string p;
  for (uint32_t i = 0; i < n; ++i) {
    PatternFor(i, &p);
    tree->Insert(p, "", i);
  }
}

// Trees are built once per (size, cache) and shared by the benchmarks.
SubjectTree& TreeFor(uint32_t n, bool cached) {
  static auto* trees =
      new std::map<std::pair<uint32_t, bool>, std::unique_ptr<SubjectTree>>;
  auto& slot = (*trees)[{n, cached}];
  if (slot == nullptr) {
    slot = std::make_unique<SubjectTree>(cached ? 4096 : 0);
    Fill(slot.get(), n);
  }
  return *slot;
}

// `count` topics (a power of two) drawn from the first n subscriptions.
std::vector<std::string> Topics(uint32_t n, bool hit, size_t count) {
  std::mt19937 rng(42);
  std::vector<std::string> topics;
  for (size_t k = 0; k < count; ++k) {
    const uint32_t i = rng() % n;
    topics.push_back(hit ? HitTopic(i)
                         : MissTopic(i, static_cast<uint32_t>(k)));
  }
  return topics;
}

// Args: {subscriptions, hit (1) or miss (0)}.
void RunMatch(benchmark::State& state, bool cached, size_t topic_count) {
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  const bool hit = state.range(1) != 0;
  SubjectTree& tree = TreeFor(n, cached);
  const std::vector<std::string> topics = Topics(n, hit, topic_count);
  for (const auto& t : topics) tree.Match(t);  // warm the cache
  const uint64_t hits0 = tree.cache_hits(), misses0 = tree.cache_misses();
  size_t matched = 0;
  size_t k = 0;
  for (auto _ : state) {
    const SubjectTree::MatchResult& r =
        tree.Match(topics[k++ & (topic_count - 1)]);
    matched += r.plain.size();
    benchmark::DoNotOptimize(r.plain.data());
  }
  const double lookups = static_cast<double>(state.iterations());
  state.counters["handles/match"] = matched / lookups;
  state.counters["cache_hit%"] =
      100.0 * (tree.cache_hits() - hits0) /
      std::max<double>(
          1, tree.cache_hits() - hits0 + tree.cache_misses() - misses0);
  state.counters["nodes"] = static_cast<double>(tree.node_count());
}

// 1024 distinct topics, all held by the cache after warm-up.
void BM_MatchCached(benchmark::State& state) { RunMatch(state, true, 1024); }
// The same topics with the cache disabled: every Match walks the tree.
void BM_MatchUncached(benchmark::State& state) { RunMatch(state, false, 1024); }
// Cache enabled but 64k distinct topics against 4096 slots: mostly misses that
// walk the tree, copy the result into the cache and evict.
void BM_MatchCacheThrash(benchmark::State& state) {
  RunMatch(state, true, 65536);
}

void MatchArgs(benchmark::internal::Benchmark* b) {
  for (int64_t n : {1, 1000, 100000, 1000000}) {
    for (int64_t hit : {1, 0}) b->Args({n, hit});
  }
  b->ArgNames({"subs", "hit"});
}

// Memory per subscription for 1M distinct subscriptions (the mix above),
// measured as heap in use (mallinfo2: bytes malloc hands out, including its
// per-chunk overhead) and as resident set growth. Runs first, in a fresh
// process, so that the RSS delta is not hidden by memory freed earlier.
size_t HeapInUse() {
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}
size_t Rss() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<size_t>(resident) * sysconf(_SC_PAGESIZE);
}

void BM_MemoryPerSubscription(benchmark::State& state) {
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  const bool long_tokens = state.range(1) != 0;
  for (auto _ : state) {
    std::string p;
    const size_t heap0 = HeapInUse(), rss0 = Rss();
    auto tree = std::make_unique<SubjectTree>();
    for (uint32_t i = 0; i < n; ++i) {
      PatternFor(i, &p);
      // Long tokens (> 15 bytes) no longer fit std::string's inline buffer.
      if (long_tokens) {
        p = "tenant-0123456789abcdef." + p + ".suffix-0123456789";
      }
      tree->Insert(p, "", i);
    }
    const size_t heap1 = HeapInUse(), rss1 = Rss();
    state.counters["heap_B/sub"] = static_cast<double>(heap1 - heap0) / n;
    state.counters["rss_B/sub"] = static_cast<double>(rss1 - rss0) / n;
    state.counters["nodes"] = static_cast<double>(tree->node_count());
  }
}

// Subscribe + unsubscribe of a fresh literal pattern on a 100k tree.
void BM_InsertRemove(benchmark::State& state) {
  SubjectTree& tree = TreeFor(100000, true);
  std::string p;
  uint32_t i = 100000;
  for (auto _ : state) {
    PatternFor(i | 2, &p);  // i | 2: never a wildcard pattern (i % 20 >= 2)
    tree.Insert(p, "", i);
    tree.Remove(p, "", i);
    i = i + 20 < 1000000 ? i + 20 : 100000;
  }
}

void BM_ValidateTopic(benchmark::State& state) {
  const std::string topic =
      state.range(0) == 0 ? "orders.eu.created.v1"
                          : std::string(200, 'x') + ".a.b.c.d.e.f.g.h.i.j";
  const Limits limits;
  for (auto _ : state) {
    absl::Status st = ValidateTopic(topic, limits);
    benchmark::DoNotOptimize(st);
  }
  state.SetBytesProcessed(state.iterations() * topic.size());
}

void BM_ValidatePattern(benchmark::State& state) {
  const std::string pattern = "orders.*.created.>";
  const Limits limits;
  for (auto _ : state) {
    absl::Status st = ValidatePattern(pattern, limits);
    benchmark::DoNotOptimize(st);
  }
}

BENCHMARK(BM_MemoryPerSubscription)
    ->Args({1000000, 0})
    ->Args({1000000, 1})
    ->ArgNames({"subs", "long_tokens"})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MatchCached)->Apply(MatchArgs);
BENCHMARK(BM_MatchUncached)->Apply(MatchArgs);
BENCHMARK(BM_MatchCacheThrash)
    ->Args({1000000, 1})
    ->Args({1000000, 0})
    ->ArgNames({"subs", "hit"});
BENCHMARK(BM_InsertRemove);
BENCHMARK(BM_ValidateTopic)->Arg(0)->Arg(1);
BENCHMARK(BM_ValidatePattern);

}  // namespace
}  // namespace sift::topic
