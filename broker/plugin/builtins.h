// The plugins built into siftd that need nothing but the plugin API:
// transforms topic_map, header_set, header_remove, enrich; filters dedup,
// rate_limit, sample. Each is described in its own header (settings, what
// it does per message, the state it keeps). As plugin.h says of all plugins:
// the factories are thread-compatible, and the filters and transforms they
// make run on the routing thread only, keeping their state without locks.
//
// The broker registers these first, then the plugins that need more (header
// and payload filters, protobuf/JSON conversion, redact, Lua, .so plugins),
// each with Registry::Add.
#ifndef SIFT_BROKER_PLUGIN_BUILTINS_H_
#define SIFT_BROKER_PLUGIN_BUILTINS_H_

#include "absl/status/status.h"
#include "broker/plugin/registry.h"
#include "broker/topic/topic.h"

namespace sift::plugin {

// Adds the built-in factories to *registry. `topic_limits` are the broker's
// topic limits, which topic_map's rewritten topics must respect. Errors:
// AlreadyExists if *registry already has one of their names (those before it
// are added).
absl::Status AddBuiltins(Registry* registry,
                         const topic::Limits& topic_limits = {});

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_BUILTINS_H_
