// The "enrich" transform: adds broker-side facts to each message as headers,
// the time the broker received it and a per-topic sequence number.
//
// Settings (all optional):
//   received_at         true|false, default true: add the receive time.
//   received_at_header  its header key, default "sift-received-at".
//   time_format         unix_ms (default): Unix milliseconds in decimal,
//                       "1700000000123"; or rfc3339: UTC with milliseconds,
//                       "2023-11-14T22:13:20.123Z". The time is
//                       CallContext::now, the routing loop's clock.
//   seq                 true|false, default true: add the sequence number.
//   seq_header          its header key, default "sift-seq".
//   max_topics          how many topics' counters to keep, default 100000
//                       (1 to 10000000); see below.
// At least one of received_at and seq must be on, and the two header keys
// must differ. Each header replaces any header of that key the publisher
// sent, so subscribers can trust it.
//
// Sequence numbers count the messages of each topic that this plugin
// instance has seen, from 1, in decimal. They are per instance: a route
// chain's enrich numbers every message of its topics, a subscription chain's
// numbers one subscriber's deliveries. They are kept in memory only: a broker
// restart or config reload (which makes new instances) starts every topic at
// 1 again, and so does a topic whose counter was evicted: when max_topics
// topics are tracked, a new topic evicts the least recently seen one. A
// consumer that checks for gaps should treat a return to 1 as a reset, not a
// loss. Memory: about (topic length + 100) bytes per tracked topic.
#ifndef SIFT_BROKER_PLUGIN_ENRICH_H_
#define SIFT_BROKER_PLUGIN_ENRICH_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "broker/plugin/plugin.h"

namespace sift::plugin {

inline constexpr std::string_view kEnrichName = "enrich";

class EnrichFactory : public TransformFactory {
 public:
  std::string_view name() const override { return kEnrichName; }
  absl::StatusOr<std::unique_ptr<Transform>> Create(
      const PluginConfig& config) const override;
};

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_ENRICH_H_
