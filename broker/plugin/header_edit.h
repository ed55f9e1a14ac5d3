// The "header_set" and "header_remove" transforms: set or remove message
// headers by fixed keys.
//
// header_set settings: one or more entries `set.<key> = <value>`, in order
// (PluginConfig keeps them ordered), e.g. `set.tenant = eu` and
// `set.source = gateway`. Each sets header <key> to <value>, replacing every
// header of that key the message had (at the place of the first; appended
// when there was none). Keys are header keys (header_key.h); a key given
// twice, or a setting not of the form set.<key>, is an error. Values are any
// bytes.
//
// header_remove settings: `keys`, a comma-separated list of header keys
// ("trace-id, debug"; blanks around names are ignored). Every header with one
// of these keys is removed. An empty list or an empty name is an error.
//
// Both emit the one message they are given; the topic, reply_to and payload
// are not touched.
#ifndef SIFT_BROKER_PLUGIN_HEADER_EDIT_H_
#define SIFT_BROKER_PLUGIN_HEADER_EDIT_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "broker/plugin/plugin.h"

namespace sift::plugin {

inline constexpr std::string_view kHeaderSetName = "header_set";
inline constexpr std::string_view kHeaderRemoveName = "header_remove";

class HeaderSetFactory : public TransformFactory {
 public:
  std::string_view name() const override { return kHeaderSetName; }
  absl::StatusOr<std::unique_ptr<Transform>> Create(
      const PluginConfig& config) const override;
};

class HeaderRemoveFactory : public TransformFactory {
 public:
  std::string_view name() const override { return kHeaderRemoveName; }
  absl::StatusOr<std::unique_ptr<Transform>> Create(
      const PluginConfig& config) const override;
};

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_HEADER_EDIT_H_
