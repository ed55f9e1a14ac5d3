#include "broker/plugin/dedup.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/base/absl_view.h"
#include "broker/plugin/header_key.h"

namespace sift::plugin {
namespace {

constexpr int64_t kMaxWindowMs = 86'400'000;
constexpr int64_t kMaxMaxIds = 10'000'000;

// Reads an integer setting within [lo, hi].
absl::StatusOr<int64_t> GetBoundedInt(const PluginConfig& config,
                                      std::string_view key, int64_t def,
                                      int64_t lo, int64_t hi) {
  absl::StatusOr<int64_t> v = config.GetInt(key, def);
  if (!v.ok()) return v.status();
  if (*v < lo || *v > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("setting \"", AV(key), "\": ", *v, " is out of range (",
                     lo, " to ", hi, ")"));
  }
  return *v;
}

class Dedup : public Filter {
 public:
  Dedup(std::string header, absl::Duration window, size_t max_ids)
      : header_(std::move(header)), window_(window), max_ids_(max_ids) {}

  absl::StatusOr<Verdict> Apply(const Message& message,
                                const CallContext& context) override {
    const std::optional<std::string_view> id = message.header(header_);
    if (!id.has_value() || id->empty()) return Verdict::Keep();
    now_ = std::max(now_, context.now);  // never backwards
    // Forget what has left the window. Ids are in arrival order and times
    // never decrease, so the expired ones are at the front.
    while (!order_.empty() && now_ - order_.front().seen >= window_) Forget();
    if (seen_.contains(AV(*id))) return Verdict::Drop("duplicate");
    if (order_.size() >= max_ids_) Forget();
    order_.push_back({std::string(*id), now_});
    seen_.insert(AV(order_.back().id));
    return Verdict::Keep();
  }

 private:
  struct Seen {
    std::string id;
    absl::Time seen;
  };

  // Forgets the oldest id. REQUIRES: !order_.empty().
  void Forget() {
    seen_.erase(AV(order_.front().id));
    order_.pop_front();
  }

  // Constant after construction.
  const std::string header_;
  const absl::Duration window_;
  const size_t max_ids_;

  absl::Time now_ = absl::InfinitePast();  // latest CallContext::now seen
  // Remembered ids, oldest first. A deque: push_back and pop_front leave the
  // other elements in place, so seen_'s views into them stay valid.
  std::deque<Seen> order_;
  absl::flat_hash_set<absl::string_view> seen_;  // views into order_
};

}  // namespace

absl::StatusOr<std::unique_ptr<Filter>> DedupFactory::Create(
    const PluginConfig& config) const {
  if (absl::Status s = config.CheckOnly({"header", "window_ms", "max_ids"});
      !s.ok()) {
    return s;
  }
  std::string header = config.GetString("header", "sift-msg-id");
  if (absl::Status s = ValidateHeaderKey(header, "header"); !s.ok()) return s;
  absl::StatusOr<int64_t> window_ms =
      GetBoundedInt(config, "window_ms", 120000, 1, kMaxWindowMs);
  if (!window_ms.ok()) return window_ms.status();
  absl::StatusOr<int64_t> max_ids =
      GetBoundedInt(config, "max_ids", 100000, 1, kMaxMaxIds);
  if (!max_ids.ok()) return max_ids.status();
  return std::make_unique<Dedup>(std::move(header),
                                 absl::Milliseconds(*window_ms),
                                 static_cast<size_t>(*max_ids));
}

}  // namespace sift::plugin
