// Cost per message of plugins from outside the broker: a filter and a
// transform from the example C ABI library (dynamic_plugin.h), and small Lua
// filters and a transform (lua_plugin.h), each on a 64-byte payload with
// three headers. Run with `bazel run -c opt //broker/plugin:script_bench`
// (the library is found through the runfiles tree).
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "broker/plugin/dynamic_plugin.h"
#include "broker/plugin/lua_plugin.h"

namespace sift::plugin {
namespace {

constexpr char kExample[] = "broker/plugin/examples/libsift_example_plugin.so";

// The example library: relative to the working directory under `bazel run`,
// else in this binary's runfiles tree.
std::string ExamplePath() {
  if (access(kExample, R_OK) == 0) return kExample;
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    return std::string(self) + ".runfiles/sift/" + kExample;
  }
  return kExample;
}

LoadedPlugin& Example() {
  static LoadedPlugin* loaded = [] {
    absl::StatusOr<LoadedPlugin> p = LoadDynamicPlugin(ExamplePath());
    if (!p.ok()) {
      std::fprintf(stderr, "%s\n", std::string(p.status().message()).c_str());
      std::abort();
    }
    return new LoadedPlugin(*std::move(p));
  }();
  return *loaded;
}

const std::string& Payload() {
  static const std::string* p = new std::string(
      "{\"id\":12345,\"side\":\"buy\",\"qty\":10,\"px\":101.25,\"venue\":"
      "\"X\"}");
  return *p;
}

Message MakeMessage() {
  return Message("orders.eu.fr", "",
                 {{"content-type", "json"}, {"priority", "2"}, {"trace", "ab"}},
                 Payload());
}

PluginConfig Config(std::vector<std::pair<std::string, std::string>> kv) {
  return PluginConfig(std::move(kv));
}

template <typename T>
T Check(absl::StatusOr<T> v) {
  if (!v.ok()) {
    std::fprintf(stderr, "%s\n", std::string(v.status().message()).c_str());
    std::abort();
  }
  return *std::move(v);
}

void RunFilter(benchmark::State& state, Filter& filter) {
  const Message m = MakeMessage();
  const CallContext ctx;
  for (auto _ : state) {
    absl::StatusOr<Verdict> v = filter.Apply(m, ctx);
    benchmark::DoNotOptimize(v);
  }
}

void RunTransform(benchmark::State& state, Transform& transform) {
  const Message m = MakeMessage();
  const CallContext ctx;
  std::vector<Message> out;
  for (auto _ : state) {
    out.clear();
    absl::Status s = transform.Apply(m, ctx, &out);
    benchmark::DoNotOptimize(s);
  }
}

void BM_DynamicFilter(benchmark::State& state) {
  auto f =
      Check(Example().filter_factory->Create(Config({{"keyword", "secret"}})));
  RunFilter(state, *f);
}
BENCHMARK(BM_DynamicFilter);

// Upper-cases the payload and adds a header.
void BM_DynamicTransform(benchmark::State& state) {
  auto t = Check(Example().transform_factory->Create(
      Config({{"header", "x-seen"}, {"value", "1"}})));
  RunTransform(state, *t);
}
BENCHMARK(BM_DynamicTransform);

// The same decision as BM_DynamicFilter.
void BM_LuaFilter(benchmark::State& state) {
  auto f = Check(MakeLuaFilterFactory()->Create(Config({{"source", R"(
    function filter(m) return not m.payload:find("secret", 1, true) end
  )"}})));
  RunFilter(state, *f);
}
BENCHMARK(BM_LuaFilter);

// Reads a header: a loop over msg.headers.
void BM_LuaFilterHeader(benchmark::State& state) {
  auto f = Check(MakeLuaFilterFactory()->Create(Config({{"source", R"(
    function filter(m)
      for _, h in ipairs(m.headers) do
        if h[1] == "priority" then return tonumber(h[2]) <= 3 end
      end
      return true
    end
  )"}})));
  RunFilter(state, *f);
}
BENCHMARK(BM_LuaFilterHeader);

// The same rewrite as BM_DynamicTransform.
void BM_LuaTransform(benchmark::State& state) {
  auto t = Check(MakeLuaTransformFactory()->Create(Config({{"source", R"(
    function transform(m)
      m.payload = m.payload:upper()
      m.headers[#m.headers + 1] = {"x-seen", "1"}
      return m
    end
  )"}})));
  RunTransform(state, *t);
}
BENCHMARK(BM_LuaTransform);

}  // namespace
}  // namespace sift::plugin
