#include "broker/plugin/header_edit.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "broker/base/absl_view.h"
#include "broker/plugin/header_key.h"

namespace sift::plugin {
namespace {

constexpr std::string_view kSetPrefix = "set.";

class HeaderSet : public Transform {
 public:
  explicit HeaderSet(std::vector<HeaderField> fields)
      : fields_(std::move(fields)) {}

  absl::Status Apply(Message message, const CallContext& context,
                     std::vector<Message>* out) override {
    for (const HeaderField& f : fields_) message.SetHeader(f.key, f.value);
    out->push_back(std::move(message));
    return absl::OkStatus();
  }

 private:
  const std::vector<HeaderField> fields_;  // constant after construction
};

class HeaderRemove : public Transform {
 public:
  explicit HeaderRemove(std::vector<std::string> keys)
      : keys_(std::move(keys)) {}

  absl::Status Apply(Message message, const CallContext& context,
                     std::vector<Message>* out) override {
    // One pass over the headers, whatever the number of keys (few).
    std::vector<HeaderField>* headers = message.mutable_headers();
    auto removed = [this](const HeaderField& h) {
      for (const std::string& key : keys_) {
        if (h.key == key) return true;
      }
      return false;
    };
    headers->erase(std::remove_if(headers->begin(), headers->end(), removed),
                   headers->end());
    out->push_back(std::move(message));
    return absl::OkStatus();
  }

 private:
  const std::vector<std::string> keys_;  // constant after construction
};

}  // namespace

absl::StatusOr<std::unique_ptr<Transform>> HeaderSetFactory::Create(
    const PluginConfig& config) const {
  std::vector<HeaderField> fields;
  for (const auto& [setting, value] : config.entries()) {
    if (!absl::StartsWith(AV(setting), AV(kSetPrefix))) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown setting \"", setting,
                       "\" (header_set takes set.<header key> = <value>)"));
    }
    const std::string_view key =
        std::string_view(setting).substr(kSetPrefix.size());
    if (absl::Status s = ValidateHeaderKey(key, setting); !s.ok()) return s;
    for (const HeaderField& f : fields) {
      if (f.key == key) {
        return absl::InvalidArgumentError(absl::StrCat(
            "setting \"", setting, "\": header \"", AV(key), "\" set twice"));
      }
    }
    fields.push_back({std::string(key), value});
  }
  if (fields.empty()) {
    return absl::InvalidArgumentError(
        "header_set needs at least one setting set.<header key> = <value>");
  }
  return std::make_unique<HeaderSet>(std::move(fields));
}

absl::StatusOr<std::unique_ptr<Transform>> HeaderRemoveFactory::Create(
    const PluginConfig& config) const {
  if (absl::Status s = config.CheckOnly({"keys"}); !s.ok()) return s;
  absl::StatusOr<std::string> list = config.GetString("keys");
  if (!list.ok()) return list.status();
  std::vector<std::string> keys;
  for (absl::string_view part : absl::StrSplit(*list, ',')) {
    const absl::string_view key = absl::StripAsciiWhitespace(part);
    if (absl::Status s = ValidateHeaderKey({key.data(), key.size()}, "keys");
        !s.ok()) {
      return s;
    }
    bool seen = false;
    for (const std::string& k : keys) seen = seen || k == key;
    if (!seen) keys.emplace_back(key.data(), key.size());
  }
  return std::make_unique<HeaderRemove>(std::move(keys));
}

}  // namespace sift::plugin
