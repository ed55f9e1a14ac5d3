// The plugin API: filters and transforms that run on messages inside the
// broker, and the factories that make them from configuration.
//
// A Filter keeps or drops a message. A Transform rewrites it (topic, headers,
// payload) and emits zero, one or several messages. Both are made by a
// factory, once, from a PluginConfig: the factory validates the config and
// returns the per-message object (StatusOr), as Envoy's filter factories do,
// so a bad config is refused when it is loaded, never per message.
//
// Where they run (docs/plugins.md): a *route chain* is configured for a topic
// pattern and runs once per published message whose topic matches, before
// subscribers are matched; a *subscription chain* runs for one subscriber's
// deliveries only. A chain runs its plugins in the order configured; a
// message that meets no chain is routed on the zero-copy path and pays
// nothing for plugins.
//
// Lifecycle and threads: factories may be called on any thread (siftd calls
// them while loading or reloading its config, off the routing thread). A
// Filter or Transform is called only on the routing thread, one message at a
// time, and lives until its chain is replaced (config reload) or its
// subscription ends; it may keep state between messages (counters, windows)
// without locks. Cost: a call should take microseconds; it must not block,
// sleep or do I/O. Script plugins run under an instruction budget.
//
// Errors: a call that returns a non-OK Status fails that message only; siftd
// sends it to the dead-letter topic "$sift.deadletter.<original topic>" with
// headers naming the plugin and the reason, and counts the error.
#ifndef SIFT_BROKER_PLUGIN_PLUGIN_H_
#define SIFT_BROKER_PLUGIN_PLUGIN_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broker/plugin/message.h"

namespace sift::plugin {

// A Filter's decision. `reason` names why a message was dropped (a short
// static string, for logs and stats); empty when kept.
struct Verdict {
  bool keep = true;
  std::string_view reason;

  static Verdict Keep() { return {true, {}}; }
  static Verdict Drop(std::string_view reason) { return {false, reason}; }
};

class Filter {
 public:
  virtual ~Filter() = default;
  // Keeps or drops `message`. Errors: any non-OK Status fails the message
  // (dead-letter, counted as an error).
  virtual absl::StatusOr<Verdict> Apply(const Message& message,
                                        const CallContext& context) = 0;
};

class Transform {
 public:
  virtual ~Transform() = default;
  // Rewrites `message` and appends what it emits to *out (which the caller
  // clears): usually the rewritten message itself (std::move it), nothing to
  // drop it, or several messages to split it. Errors: any non-OK Status fails
  // the message (dead-letter, counted as an error); *out is then ignored.
  virtual absl::Status Apply(Message message, const CallContext& context,
                             std::vector<Message>* out) = 0;
};

// A plugin's settings: ordered key/value strings, from a chain entry of
// siftd's config file (or a SUB's options). Factories read what they know and
// must refuse keys they do not know (CheckOnly), so a typo is an error at
// load time.
class PluginConfig {
 public:
  PluginConfig() = default;
  explicit PluginConfig(std::vector<std::pair<std::string, std::string>> kv)
      : kv_(std::move(kv)) {}

  const std::vector<std::pair<std::string, std::string>>& entries() const {
    return kv_;
  }
  void Add(std::string key, std::string value) {
    kv_.emplace_back(std::move(key), std::move(value));
  }
  // The value of `key`, or nullptr.
  const std::string* Find(std::string_view key) const;
  // The string value of `key`. Errors: InvalidArgument if absent.
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  std::string GetString(std::string_view key, std::string_view def) const;
  // Integer / double / bool values. Errors: InvalidArgument if the value does
  // not parse (or, without a default, is absent).
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  absl::StatusOr<int64_t> GetInt(std::string_view key, int64_t def) const;
  absl::StatusOr<double> GetDouble(std::string_view key, double def) const;
  absl::StatusOr<bool> GetBool(std::string_view key, bool def) const;
  // InvalidArgument naming the first key not in `known`.
  absl::Status CheckOnly(std::initializer_list<std::string_view> known) const;

 private:
  std::vector<std::pair<std::string, std::string>> kv_;
};

// Makes Filters (or Transforms) of one kind. Create() validates `config` and
// returns a ready plugin, or InvalidArgument saying what is wrong (naming
// the key), or FailedPrecondition when something it needs is missing (a file,
// a descriptor set). Thread-compatible: Create may be called from any one
// thread at a time.
class FilterFactory {
 public:
  virtual ~FilterFactory() = default;
  virtual std::string_view name() const = 0;
  virtual absl::StatusOr<std::unique_ptr<Filter>> Create(
      const PluginConfig& config) const = 0;
};

class TransformFactory {
 public:
  virtual ~TransformFactory() = default;
  virtual std::string_view name() const = 0;
  virtual absl::StatusOr<std::unique_ptr<Transform>> Create(
      const PluginConfig& config) const = 0;
};

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_PLUGIN_H_
