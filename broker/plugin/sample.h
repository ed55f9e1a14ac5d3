// The "sample" filter: keeps a share of the messages and drops the rest
// (reason "sampled_out"), by count or at random.
//
// Settings: exactly one of
//   every        N >= 1: keeps the 1st, (N+1)th, (2N+1)th, ... message this
//                instance sees (a counter, deterministic); every = 1 keeps
//                all.
//   probability  p in [0, 1]: keeps each message with probability p,
//                independently (absl random); 0 drops all, 1 keeps all.
// and, with probability only,
//   seed         an unsigned 64-bit integer: draws from a generator seeded
//                with it, so that a test sees the same choices on every run
//                of the same build (not across abseil versions). Without it
//                the generator is seeded from the system.
// The count is per plugin instance (not per topic): a route chain's sample
// thins all the messages of its topics together.
#ifndef SIFT_BROKER_PLUGIN_SAMPLE_H_
#define SIFT_BROKER_PLUGIN_SAMPLE_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "broker/plugin/plugin.h"

namespace sift::plugin {

inline constexpr std::string_view kSampleName = "sample";

class SampleFactory : public FilterFactory {
 public:
  std::string_view name() const override { return kSampleName; }
  absl::StatusOr<std::unique_ptr<Filter>> Create(
      const PluginConfig& config) const override;
};

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_SAMPLE_H_
