#include "broker/plugin/rate_limit.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace sift::plugin {
namespace {

constexpr double kMaxRate = 1e9;
constexpr double kMaxBurst = 1e9;

// The token bucket, computed as GCRA (the "virtual scheduling" form): instead
// of a token count it keeps tat_, the time at which the bucket would be full
// again. A message at `now` finds tat_ - now worth of tokens missing; it is
// kept if at most burst - 1 are missing (tau_), and then takes one (tat_
// moves on by interval_). All in absl::Duration's integer ticks, so a
// simulated clock gives exact results where adding up fractions of a token
// in floating point would drift.
class RateLimit : public Filter {
 public:
  RateLimit(absl::Duration interval, absl::Duration tau)
      : interval_(interval), tau_(tau) {}

  absl::StatusOr<Verdict> Apply(const Message& message,
                                const CallContext& context) override {
    now_ = std::max(now_, context.now);  // never backwards
    const absl::Time tat = std::max(tat_, now_);
    if (tat - now_ > tau_) return Verdict::Drop("rate_limit");
    tat_ = tat + interval_;
    return Verdict::Keep();
  }

 private:
  // Constant after construction.
  const absl::Duration interval_;  // 1 / rate: what one token is worth
  const absl::Duration tau_;       // (burst - 1) * interval_

  absl::Time now_ = absl::InfinitePast();  // latest CallContext::now seen
  absl::Time tat_ = absl::InfinitePast();  // when the bucket is full again
};

}  // namespace

absl::StatusOr<std::unique_ptr<Filter>> RateLimitFactory::Create(
    const PluginConfig& config) const {
  if (absl::Status s = config.CheckOnly({"rate_per_second", "burst"});
      !s.ok()) {
    return s;
  }
  if (config.Find("rate_per_second") == nullptr) {
    return absl::InvalidArgumentError("missing setting \"rate_per_second\"");
  }
  absl::StatusOr<double> rate = config.GetDouble("rate_per_second", 0);
  if (!rate.ok()) return rate.status();
  // Written so that NaN fails too.
  if (!(*rate > 0 && *rate <= kMaxRate)) {
    return absl::InvalidArgumentError(
        absl::StrCat("setting \"rate_per_second\": ", *rate,
                     " is out of range (more than 0, at most ", kMaxRate, ")"));
  }
  absl::StatusOr<double> burst =
      config.GetDouble("burst", std::max(1.0, *rate));
  if (!burst.ok()) return burst.status();
  if (!(*burst >= 1 && *burst <= kMaxBurst)) {
    return absl::InvalidArgumentError(
        absl::StrCat("setting \"burst\": ", *burst, " is out of range (1 to ",
                     kMaxBurst, ")"));
  }
  const absl::Duration interval = absl::Seconds(1) / *rate;
  return std::make_unique<RateLimit>(interval, interval * (*burst - 1));
}

}  // namespace sift::plugin
