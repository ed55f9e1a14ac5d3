#include "broker/plugin/registry.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/base/absl_view.h"
#include "broker/base/quoted_text.h"

namespace sift::plugin {

absl::Status Registry::CheckNewName(std::string_view name) const {
  if (name.empty()) {
    return absl::InvalidArgumentError("a plugin's name may not be empty");
  }
  auto it = plugins_.find(name);
  if (it != plugins_.end()) {
    return absl::AlreadyExistsError(absl::StrCat(
        "a ", it->second.filter != nullptr ? "filter" : "transform",
        " named \"", AV(name), "\" is already registered"));
  }
  return absl::OkStatus();
}

absl::Status Registry::Add(std::unique_ptr<FilterFactory> factory) {
  if (factory == nullptr) {
    return absl::InvalidArgumentError("null filter factory");
  }
  const std::string_view name = factory->name();
  if (absl::Status s = CheckNewName(name); !s.ok()) return s;
  std::string key(name);  // before the move: `name` views the factory
  plugins_[std::move(key)].filter = std::move(factory);
  return absl::OkStatus();
}

absl::Status Registry::Add(std::unique_ptr<TransformFactory> factory) {
  if (factory == nullptr) {
    return absl::InvalidArgumentError("null transform factory");
  }
  const std::string_view name = factory->name();
  if (absl::Status s = CheckNewName(name); !s.ok()) return s;
  std::string key(name);  // before the move: `name` views the factory
  plugins_[std::move(key)].transform = std::move(factory);
  return absl::OkStatus();
}

std::string Registry::KnownNames(bool filters, bool transforms) const {
  std::string out;
  for (const auto& [name, slot] : plugins_) {
    if ((filters && slot.filter != nullptr) ||
        (transforms && slot.transform != nullptr)) {
      absl::StrAppend(&out, out.empty() ? "" : ", ", name);
    }
  }
  return out.empty() ? "none" : out;
}

absl::StatusOr<Registry::Entry> Registry::Find(std::string_view name) const {
  auto it = plugins_.find(name);
  if (it == plugins_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no plugin named ", Quoted(name),
                     " (known: ", KnownNames(true, true), ")"));
  }
  return Entry{it->second.filter.get(), it->second.transform.get()};
}

absl::StatusOr<const FilterFactory*> Registry::FindFilter(
    std::string_view name) const {
  auto it = plugins_.find(name);
  if (it == plugins_.end() || it->second.filter == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no filter named ", Quoted(name),
                     it == plugins_.end() ? "" : ": it is a transform",
                     " (known filters: ", KnownNames(true, false), ")"));
  }
  return it->second.filter.get();
}

absl::StatusOr<const TransformFactory*> Registry::FindTransform(
    std::string_view name) const {
  auto it = plugins_.find(name);
  if (it == plugins_.end() || it->second.transform == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no transform named ", Quoted(name),
                     it == plugins_.end() ? "" : ": it is a filter",
                     " (known transforms: ", KnownNames(false, true), ")"));
  }
  return it->second.transform.get();
}

std::vector<std::string> Registry::FilterNames() const {
  std::vector<std::string> out;
  for (const auto& [name, slot] : plugins_) {
    if (slot.filter != nullptr) out.push_back(name);
  }
  return out;
}

std::vector<std::string> Registry::TransformNames() const {
  std::vector<std::string> out;
  for (const auto& [name, slot] : plugins_) {
    if (slot.transform != nullptr) out.push_back(name);
  }
  return out;
}

}  // namespace sift::plugin
