// The "dedup" filter: drops a message whose id was already seen within a
// time window, as JetStream's duplicate window does for Nats-Msg-Id.
//
// Settings (all optional):
//   header     the header holding the message id, default "sift-msg-id".
//   window_ms  how long an id is remembered, in milliseconds, default 120000
//              (2 minutes, JetStream's default); 1 to 86400000 (a day).
//   max_ids    most ids remembered, default 100000 (1 to 10000000); when
//              full, the oldest id is forgotten first, even inside its window.
//
// A message with the header is kept the first time its id is seen and
// dropped (reason "duplicate") when the same id (compared byte for byte)
// comes again less than window_ms later. The window runs from the first
// sighting: duplicates do not extend it, and once it has passed the id is
// forgotten, so the next message with it is kept and starts a new window.
// A message without the header, or with an empty one, is kept and not
// remembered.
//
// Time is CallContext::now; a clock that steps back is treated as standing
// still. Ids live in memory only, per plugin instance: a restart or config
// reload forgets them. Memory: about (id length + 60) bytes per id, so
// max_ids times the largest id the broker's header limits allow, at worst.
#ifndef SIFT_BROKER_PLUGIN_DEDUP_H_
#define SIFT_BROKER_PLUGIN_DEDUP_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "broker/plugin/plugin.h"

namespace sift::plugin {

inline constexpr std::string_view kDedupName = "dedup";

class DedupFactory : public FilterFactory {
 public:
  std::string_view name() const override { return kDedupName; }
  absl::StatusOr<std::unique_ptr<Filter>> Create(
      const PluginConfig& config) const override;
};

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_DEDUP_H_
