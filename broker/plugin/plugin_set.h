// PluginSet: everything siftd's plugins need at run time, built from the
// plugin sections of its config file: the registry of plugins (built-in,
// Lua, and those of the shared libraries listed), the route chains, and the
// rules for chains that subscribers ask for in SUB.
//
// Config file sections (docs/plugins.md has the full reference):
//
//   [[plugin_libraries]]         # a .so built against sift_plugin.h; its
//                                # plugins are named as it says, or
//                                # <name>_filter and <name>_transform
//                                # when it provides both kinds
//   path = "/usr/lib/sift/libkeyword.so"
//   required = true              # false: start without it (logged)
//
//   [[routes]]                   # first route whose pattern matches wins
//   pattern = "orders.>"
//   [[routes.chain]]             # plugins in order
//   plugin = "header_filter"
//   expr = "region == 'eu'"
//
//   [[message_types]]            # the protobuf type of a pattern's topics
//   pattern = "orders.>"
//   type = "shop.Order"
//   descriptor_set = "/etc/sift/shop.pb"
//
//   [subscriptions]              # what a SUB may ask for
//   plugins = ["header_filter", "payload_filter", ...]
//   descriptor_sets = ["/etc/sift/shop.pb"]
//
// A chain entry's other keys are the plugin's settings; strings, integers,
// floats and booleans are passed as text, arrays of strings joined by
// commas.
//
// Thread-safety: Parse/Build may run on any thread (they read files and
// load libraries). A built PluginSet is then used by the routing thread
// only: RouteFor() hands out chains whose plugins keep state.
#ifndef SIFT_BROKER_PLUGIN_PLUGIN_SET_H_
#define SIFT_BROKER_PLUGIN_PLUGIN_SET_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "broker/plugin/chain.h"
#include "broker/plugin/registry.h"
#include "broker/topic/topic.h"

namespace sift::plugin {

struct LibrarySpec {
  std::string path;
  bool required = true;
};

struct RouteSpec {
  std::string pattern;
  std::vector<StageSpec> chain;
};

// The message type of the topics a pattern covers ([[message_types]]): a
// protobuf plugin (proto_to_json, json_to_proto, and payload_filter or
// redact with format = "protobuf") on a route or subscription whose pattern
// lies within `pattern` and that names no `type` gets this `type` and
// `descriptor_set`. The first entry that covers the chain's pattern wins.
struct MessageTypeSpec {
  std::string pattern;
  std::string type;            // full message name, e.g. shop.Order
  std::string descriptor_set;  // protoc --descriptor_set_out file(s)
};

// The plugin sections of a config file.
struct PluginSettings {
  std::vector<LibrarySpec> libraries;
  std::vector<RouteSpec> routes;
  std::vector<MessageTypeSpec> message_types;
  // Plugins a SUB may name (its `filter` uses header_filter, which must be
  // listed too).
  std::vector<std::string> subscription_plugins = {
      "header_filter", "payload_filter", "proto_to_json", "json_to_proto",
      "redact",        "dedup",          "rate_limit",    "sample",
      "header_set",    "header_remove",  "enrich",        "topic_map"};
  // Descriptor sets a SUB's plugins may name in `descriptor_set`.
  std::vector<std::string> subscription_descriptor_sets;
};

// The config file's top-level keys that belong to plugins (config.cc skips
// them).
inline constexpr std::string_view kPluginSections[] = {
    "plugin_libraries", "routes", "subscriptions", "message_types"};

// Reads the plugin sections of TOML `text` (other keys are ignored).
// Errors: InvalidArgument naming `source_name`, the line and what is wrong
// (an unknown key in a section, a missing pattern or plugin name, an invalid
// pattern, a value of the wrong type, a chain entry setting given twice, as
// set.tenant and 'set.tenant').
absl::StatusOr<PluginSettings> ParsePluginSettings(std::string_view text,
                                                   std::string_view source_name);

// Compares every field (a chain entry's settings in order).
bool operator==(const PluginSettings& a, const PluginSettings& b);
inline bool operator!=(const PluginSettings& a, const PluginSettings& b) {
  return !(a == b);
}

// `settings` as the TOML of the plugin sections, in the order above
// ([[plugin_libraries]], [[routes]] with their [[routes.chain]],
// [[message_types]], then [subscriptions], always written). Chain settings
// are written as strings, in their order. For siftd --print-config:
// ParsePluginSettings of the result gives `settings` back. The tables go
// after a file's top-level keys.
std::string PluginSettingsToToml(const PluginSettings& settings);

// One STATS row: a stage of a route chain, or one plugin summed over all
// subscription chains.
struct PluginStatsRow {
  std::string plugin;
  std::string chain;  // "route orders.> #2" or "subscriptions"
  StageCounters counters;
};

class PluginSet {
 public:
  // Loads the libraries (a required one that fails to load fails the
  // build; an optional one is skipped and its error added to *warnings),
  // registers every plugin, and builds every route chain. `topic_limits`
  // bound topics that plugins rewrite. Errors name the route and plugin.
  static absl::StatusOr<std::unique_ptr<PluginSet>> Build(
      const PluginSettings& settings, const topic::Limits& topic_limits,
      std::vector<std::string>* warnings);

  // True if any route chain is configured.
  bool has_routes() const { return !routes_.empty(); }
  size_t route_count() const { return routes_.size(); }
  // The chain of the first route whose pattern matches `topic`, or null.
  Chain* RouteFor(std::string_view topic);

  // A chain for one subscription: a header_filter on `filter` (if not
  // empty), then `stages`. Errors: InvalidArgument for a setting given
  // twice in one stage ("plugin N (\"name\"): setting \"k\" is given
  // twice", checked first), InvalidArgument with the expression's
  // position for a bad filter ("filter: at position N: ..."),
  // PermissionDenied for a plugin or descriptor set not allowed in
  // [subscriptions], else the factory's error.
  // `pattern` is the subscription's (for [[message_types]]; "" for none).
  absl::StatusOr<std::unique_ptr<Chain>> SubscriptionChain(
      std::string_view pattern, std::string_view filter,
      const std::vector<StageSpec>& stages) const;
  absl::StatusOr<std::unique_ptr<Chain>> SubscriptionChain(
      std::string_view filter, const std::vector<StageSpec>& stages) const {
    return SubscriptionChain("", filter, stages);
  }

  // Counters, route stages first (in config order), then subscription
  // plugins in the order they were first used.
  std::vector<PluginStatsRow> Stats() const;

  const Registry& registry() const { return registry_; }

  // Takes over `old`'s counters (a reload): the subscription counters
  // (subscriptions made before keep counting into the rows STATS shows),
  // and the figures of every route stage that is still there (same route
  // pattern, position and plugin).
  void InheritCounters(const PluginSet& old);

 private:
  struct Route {
    std::string pattern;
    std::unique_ptr<Chain> chain;
  };
  PluginSet() = default;
  std::shared_ptr<StageCounters> SubscriptionCounters(std::string_view plugin)
      const;
  // Gives protobuf stages without a `type` the [[message_types]] entry that
  // covers `pattern`.
  void FillMessageTypes(std::string_view pattern,
                        std::vector<StageSpec>* stages) const;

  Registry registry_;
  PluginSettings settings_;
  std::vector<Route> routes_;
  std::vector<PluginStatsRow> route_rows_;  // names; counters below
  std::vector<std::shared_ptr<StageCounters>> route_counters_;
  // Per plugin name, shared by every subscription chain.
  mutable std::vector<std::pair<std::string, std::shared_ptr<StageCounters>>>
      subscription_counters_;
};

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_PLUGIN_SET_H_
