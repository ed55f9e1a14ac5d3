// Benchmarks for the filter expression (expression.h) and the header filter
// (header_filter.h): the per-message cost of a subscription or route filter.
// Run before changing either:
//
//   bazel run //broker/plugin:expression_bench -- --benchmark_min_time=0.2
//
// The message has 3 headers; the expression is the typical
// "region == 'eu' && priority >= 5", which reads two of them (the second
// as a number).

#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "broker/plugin/expression.h"
#include "broker/plugin/header_filter.h"
#include "broker/plugin/message.h"

namespace sift::plugin {
namespace {

constexpr char kExpr[] = "region == 'eu' && priority >= 5";

Message ThreeHeaders(const char* region) {
  return Message("orders.eu.created", "",
                 {{"tenant", "acme"}, {"region", region}, {"priority", "7"}},
                 "{\"id\":1}");
}

// Expression::Evaluate over a HeaderFieldSource; `match` picks a message
// that passes both terms or fails the first.
void BM_Evaluate(benchmark::State& state) {
  const Expression expression = *Expression::Parse(kExpr);
  const Message message = ThreeHeaders(state.range(0) ? "eu" : "us");
  for (auto _ : state) {
    const HeaderFieldSource source(message);
    benchmark::DoNotOptimize(expression.Evaluate(source));
  }
}
BENCHMARK(BM_Evaluate)->ArgName("match")->Arg(1)->Arg(0);

// The header filter's Apply (a virtual call around the above).
void BM_HeaderFilterApply(benchmark::State& state) {
  const std::unique_ptr<Filter> filter = *MakeHeaderFilter(kExpr);
  const Message message = ThreeHeaders(state.range(0) ? "eu" : "us");
  const CallContext context;
  for (auto _ : state) {
    benchmark::DoNotOptimize(filter->Apply(message, context));
  }
}
BENCHMARK(BM_HeaderFilterApply)->ArgName("match")->Arg(1)->Arg(0);

// Parse, for scale: done once per SUB or config load, never per message.
void BM_Parse(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(Expression::Parse(kExpr));
  }
}
BENCHMARK(BM_Parse);

}  // namespace
}  // namespace sift::plugin
