// The "topic_map" transform: rewrites topics that match a pattern, as NATS
// subject mapping does ("orders.*.created" -> "audit.orders.$1").
//
// Settings:
//   from  (required) a pattern (docs/protocol.md §5): literal tokens, `*`
//         (one token) and a final `>` (one or more tokens). Its wildcards are
//         the captures $1, $2, ... in order, left to right.
//   to    (required) the new topic: a literal topic in which "$1".."$9" stand
//         for the captures. A `*` capture is the one token it matched; the `>`
//         capture is the whole dotted rest ("a.b.c"). A capture may be used
//         several times, not at all, or inside a token ("v$1"); "$0" is an
//         error, and "$12" is capture 1 followed by "2". A '$' not followed
//         by a digit is an ordinary character ("$sift.x" is literal).
// Create() checks that `from` is a valid pattern, that `to` names only
// captures `from` has, and that `to` gives a valid literal topic within the
// limits when each capture is one byte.
//
// Per message: a topic that does not match `from` passes unchanged; one that
// matches is rewritten, and the result is checked again (a long `>` capture
// can exceed the topic limits): an invalid result fails the message with
// InvalidArgument. Only the topic changes; reply_to, headers and payload are
// kept. A pattern may have more than 9 wildcards; only the first 9 can be
// used in `to`.
#ifndef SIFT_BROKER_PLUGIN_TOPIC_MAP_H_
#define SIFT_BROKER_PLUGIN_TOPIC_MAP_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "broker/plugin/plugin.h"
#include "broker/topic/topic.h"

namespace sift::plugin {

inline constexpr std::string_view kTopicMapName = "topic_map";

// Thread-compatible, like every factory; the transforms it makes are not
// thread-safe (routing thread only).
class TopicMapFactory : public TransformFactory {
 public:
  // `limits`: the broker's topic limits, which mapped topics must respect.
  explicit TopicMapFactory(topic::Limits limits = {}) : limits_(limits) {}

  std::string_view name() const override { return kTopicMapName; }
  absl::StatusOr<std::unique_ptr<Transform>> Create(
      const PluginConfig& config) const override;

 private:
  topic::Limits limits_;
};

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_TOPIC_MAP_H_
