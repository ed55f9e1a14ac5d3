#include "broker/store/retained.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/topic/topic.h"

namespace sift::store {

absl::Status RetainedStore::Set(MessageRef message, bool restored) {
  auto it = values_.find(message->topic());
  const uint64_t old_cost = it == values_.end() ? 0 : Cost(*it->second);
  if (message->payload().empty()) {
    if (it != values_.end()) {
      bytes_ -= old_cost;
      values_.erase(it);
    }
    return absl::OkStatus();
  }
  const uint64_t cost = Cost(*message);
  if (!restored && max_topics_ == 0) {
    return absl::ResourceExhaustedError(
        "retained values are off on this broker (max_retained is 0)");
  }
  if (!restored && it == values_.end() && values_.size() >= max_topics_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the broker holds ", values_.size(),
                     " retained values (max_retained ", max_topics_,
                     "); clear some (an empty retained publish) or raise "
                     "the setting"));
  }
  if (!restored && bytes_ - old_cost + cost > max_bytes_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("retained values would take ", bytes_ - old_cost + cost,
                     " bytes, over max_retained_bytes (", max_bytes_, ")"));
  }
  bytes_ = bytes_ - old_cost + cost;
  if (it == values_.end()) {
    values_.emplace(message->topic(), std::move(message));
  } else {
    it->second = std::move(message);
  }
  return absl::OkStatus();
}

void RetainedStore::Match(std::string_view pattern,
                          std::vector<MessageRef>* out) const {
  if (pattern.find_first_of("*>") == std::string_view::npos) {
    auto it = values_.find(pattern);
    if (it != values_.end()) out->push_back(it->second);
    return;
  }
  // Topics the pattern can match start with its literal first token (if it
  // has one): walk only that range.
  const size_t dot = pattern.find('.');
  const std::string_view first = pattern.substr(0, dot);
  auto it = values_.begin();
  auto end = values_.end();
  std::string prefix;
  if (first != "*" && first != ">") {
    prefix = std::string(first) + ".";
    it = values_.lower_bound(prefix);
  }
  for (; it != end; ++it) {
    if (!prefix.empty() && it->first.compare(0, prefix.size(), prefix) != 0) {
      break;
    }
    if (topic::PatternMatches(pattern, it->first)) out->push_back(it->second);
  }
}

}  // namespace sift::store
