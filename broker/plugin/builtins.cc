#include "broker/plugin/builtins.h"

#include <memory>

#include "broker/plugin/dedup.h"
#include "broker/plugin/enrich.h"
#include "broker/plugin/header_edit.h"
#include "broker/plugin/rate_limit.h"
#include "broker/plugin/sample.h"
#include "broker/plugin/topic_map.h"

namespace sift::plugin {

absl::Status AddBuiltins(Registry* registry,
                         const topic::Limits& topic_limits) {
  absl::Status s =
      registry->Add(std::make_unique<TopicMapFactory>(topic_limits));
  if (s.ok()) s = registry->Add(std::make_unique<HeaderSetFactory>());
  if (s.ok()) s = registry->Add(std::make_unique<HeaderRemoveFactory>());
  if (s.ok()) s = registry->Add(std::make_unique<EnrichFactory>());
  if (s.ok()) s = registry->Add(std::make_unique<DedupFactory>());
  if (s.ok()) s = registry->Add(std::make_unique<RateLimitFactory>());
  if (s.ok()) s = registry->Add(std::make_unique<SampleFactory>());
  return s;
}

}  // namespace sift::plugin
