// Chain: plugins run in order on one message, with their counters.
//
// A chain is built once from its specs (names looked up in a Registry, each
// factory validating its settings) and then run per message: each stage
// takes every message the previous stage let through (a filter keeps or
// drops it; a transform emits zero, one or several), and what leaves the
// last stage is the chain's output. A message that a plugin fails (non-OK
// Status) leaves the chain as a Failure, with the plugin's name and reason,
// so the broker can dead-letter it; the chain's other messages go on.
//
// Counters: each stage counts calls, passes (kept, or emitted at least one
// message), drops, errors and the time spent in the plugin (ns). They are
// shared (shared_ptr), so a STATS row can sum the stages of many chains (all
// subscriptions' header_filter, say) and outlive a config reload.
//
// Thread-safety: Build() may run on any thread. Run() is for the routing
// thread only (the plugins are not thread-safe), one message at a time.
#ifndef SIFT_BROKER_PLUGIN_CHAIN_H_
#define SIFT_BROKER_PLUGIN_CHAIN_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "broker/plugin/message.h"
#include "broker/plugin/plugin.h"
#include "broker/plugin/registry.h"

namespace sift::plugin {

// One chain entry as configured: the plugin's name and its settings.
struct StageSpec {
  std::string plugin;
  PluginConfig config;
};

struct StageCounters {
  uint64_t calls = 0;
  uint64_t passes = 0;
  uint64_t drops = 0;
  uint64_t errors = 0;
  uint64_t nanos = 0;
};

// Most messages one input may become inside a chain (a transform that
// splits beyond this fails the message).
inline constexpr size_t kMaxChainOutputs = 1024;

class Chain {
 public:
  // A message a plugin failed: the message as it entered that plugin.
  struct Failure {
    Message message;
    std::string plugin;  // the plugin's name
    std::string reason;  // its Status, as text
  };

  // Builds the stages of `specs` in order. `counters_for(plugin name,
  // position)` gives each stage its counters. Errors: the registry's
  // NotFound for an unknown name, or the factory's error, prefixed with
  // "<where> plugin N (<name>): ".
  using CountersFor = std::function<std::shared_ptr<StageCounters>(
      std::string_view plugin, size_t position)>;
  static absl::StatusOr<std::unique_ptr<Chain>> Build(
      const Registry& registry, const std::vector<StageSpec>& specs,
      std::string_view where, const CountersFor& counters_for);

  // Runs `message` through every stage. *out and *failures are cleared
  // first; *out gets what passed every stage, in order.
  void Run(Message message, const CallContext& context,
           std::vector<Message>* out, std::vector<Failure>* failures);

  size_t size() const { return stages_.size(); }
  bool empty() const { return stages_.empty(); }

 private:
  struct Stage {
    std::string name;
    std::unique_ptr<Filter> filter;
    std::unique_ptr<Transform> transform;
    std::shared_ptr<StageCounters> counters;
  };
  std::vector<Stage> stages_;
  // Reused between runs.
  std::vector<Message> next_;
  std::vector<Message> emitted_;
};

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_CHAIN_H_
