#include "broker/plugin/plugin.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "broker/base/absl_view.h"

namespace sift::plugin {

const std::string* PluginConfig::Find(std::string_view key) const {
  for (const auto& [k, v] : kv_) {
    if (k == key) return &v;
  }
  return nullptr;
}

absl::StatusOr<std::string> PluginConfig::GetString(
    std::string_view key) const {
  if (const std::string* v = Find(key)) return *v;
  return absl::InvalidArgumentError(
      absl::StrCat("missing setting \"", AV(key), "\""));
}

std::string PluginConfig::GetString(std::string_view key,
                                    std::string_view def) const {
  if (const std::string* v = Find(key)) return *v;
  return std::string(def);
}

absl::StatusOr<int64_t> PluginConfig::GetInt(std::string_view key) const {
  const std::string* v = Find(key);
  if (v == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("missing setting \"", AV(key), "\""));
  }
  int64_t out;
  if (!absl::SimpleAtoi(*v, &out)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "setting \"", AV(key), "\": \"", *v, "\" is not an integer"));
  }
  return out;
}

absl::StatusOr<int64_t> PluginConfig::GetInt(std::string_view key,
                                             int64_t def) const {
  if (Find(key) == nullptr) return def;
  return GetInt(key);
}

absl::StatusOr<double> PluginConfig::GetDouble(std::string_view key,
                                               double def) const {
  const std::string* v = Find(key);
  if (v == nullptr) return def;
  double out;
  if (!absl::SimpleAtod(*v, &out)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "setting \"", AV(key), "\": \"", *v, "\" is not a number"));
  }
  return out;
}

absl::StatusOr<bool> PluginConfig::GetBool(std::string_view key,
                                           bool def) const {
  const std::string* v = Find(key);
  if (v == nullptr) return def;
  bool out;
  if (!absl::SimpleAtob(*v, &out)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "setting \"", AV(key), "\": \"", *v, "\" is not true or false"));
  }
  return out;
}

absl::Status PluginConfig::CheckOnly(
    std::initializer_list<std::string_view> known) const {
  for (const auto& [k, v] : kv_) {
    bool found = false;
    for (std::string_view name : known) found = found || name == k;
    if (!found) {
      std::string list;
      for (std::string_view name : known) {
        absl::StrAppend(&list, list.empty() ? "" : ", ", AV(name));
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown setting \"", AV(k), "\" (known: ", list, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace sift::plugin
