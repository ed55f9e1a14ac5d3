// The "rate_limit" filter: a token bucket that keeps at most rate_per_second
// messages a second on average, with bursts of up to `burst`, and drops the
// rest (reason "rate_limit").
//
// Settings:
//   rate_per_second  (required) tokens added per second, a number > 0 and at
//                    most 1e9 (fractions allowed: 0.5 is one message every two
//                    seconds).
//   burst            bucket size, a number from 1 to 1e9, default max(1,
//                    rate_per_second). The bucket starts full.
//
// Each kept message takes one token; a message that finds less than one is
// dropped and takes nothing. Time is CallContext::now (the bucket refills by
// the time elapsed between calls); a clock that steps back is treated as
// standing still.
// The limit is per plugin instance: one route chain's rate_limit limits all
// the messages of its topics together, a subscription chain's one
// subscriber's deliveries.
#ifndef SIFT_BROKER_PLUGIN_RATE_LIMIT_H_
#define SIFT_BROKER_PLUGIN_RATE_LIMIT_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "broker/plugin/plugin.h"

namespace sift::plugin {

inline constexpr std::string_view kRateLimitName = "rate_limit";

class RateLimitFactory : public FilterFactory {
 public:
  std::string_view name() const override { return kRateLimitName; }
  absl::StatusOr<std::unique_ptr<Filter>> Create(
      const PluginConfig& config) const override;
};

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_RATE_LIMIT_H_
