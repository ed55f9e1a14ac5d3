// Registry names every plugin siftd knows: built-in, script and dynamically
// loaded filters and transforms, each by its factory. A chain entry in the
// config names a plugin ("dedup", "topic_map"); the config loader finds its
// factory here and calls Create() with the entry's settings.
//
// Filters and transforms share one namespace, so a name says unambiguously
// which plugin a chain entry means.
//
// Thread-safety: filled at startup and at config load (Add), read-only after
// that. Add is not thread-safe; once the last Add has returned (and that is
// published to readers, e.g. by starting their threads afterwards), the const
// methods may be called from any number of threads at once. Factories live
// as long as the Registry.
#ifndef SIFT_BROKER_PLUGIN_REGISTRY_H_
#define SIFT_BROKER_PLUGIN_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broker/plugin/plugin.h"

namespace sift::plugin {

class Registry {
 public:
  // What a name refers to: exactly one of the two is set.
  struct Entry {
    const FilterFactory* filter = nullptr;
    const TransformFactory* transform = nullptr;
  };

  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  Registry(Registry&&) = default;
  Registry& operator=(Registry&&) = default;

  // Registers `factory` under factory->name(). Errors: InvalidArgument if
  // the factory is null or its name empty; AlreadyExists if a filter or a
  // transform already has that name (the registry keeps the first).
  absl::Status Add(std::unique_ptr<FilterFactory> factory);
  absl::Status Add(std::unique_ptr<TransformFactory> factory);

  // The plugin called `name`. Errors: NotFound listing the known names.
  absl::StatusOr<Entry> Find(std::string_view name) const;
  // The filter (transform) called `name`. Errors: NotFound listing the known
  // filters (transforms), and saying so when `name` is the other kind.
  absl::StatusOr<const FilterFactory*> FindFilter(std::string_view name) const;
  absl::StatusOr<const TransformFactory*> FindTransform(
      std::string_view name) const;

  // Names, sorted.
  std::vector<std::string> FilterNames() const;
  std::vector<std::string> TransformNames() const;
  size_t size() const { return plugins_.size(); }

 private:
  struct Slot {
    std::unique_ptr<FilterFactory> filter;
    std::unique_ptr<TransformFactory> transform;
  };

  absl::Status CheckNewName(std::string_view name) const;
  std::string KnownNames(bool filters, bool transforms) const;

  // Sorted, so that names come out in order in listings and error messages.
  // Looked up only at config load, never per message.
  std::map<std::string, Slot, std::less<>> plugins_;
};

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_REGISTRY_H_
