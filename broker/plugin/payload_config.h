// What the payload plugins (payload_plugins.h) read from their configs in
// common: the payload format, and for protobuf the message type and the
// descriptor sets that define it. Internal to the payload plugins.
//
// Called from factories only (config load; reads files). The results are
// immutable and may be shared between threads.
#ifndef SIFT_BROKER_PLUGIN_PAYLOAD_CONFIG_H_
#define SIFT_BROKER_PLUGIN_PAYLOAD_CONFIG_H_

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broker/plugin/descriptor_registry.h"
#include "broker/plugin/plugin.h"

namespace sift::plugin {

enum class PayloadFormat { kJson, kProtobuf };

// The settings' names, shared by the payload plugins.
inline constexpr std::string_view kFormatKey = "format";
inline constexpr std::string_view kTypeKey = "type";
inline constexpr std::string_view kDescriptorSetKey = "descriptor_set";

// A protobuf message type and what keeps it alive.
struct ProtoType {
  std::shared_ptr<const DescriptorRegistry> registry;
  const google::protobuf::Descriptor* descriptor = nullptr;
  const google::protobuf::Message* prototype = nullptr;  // New() per plugin
};

// The required setting "format": "json" or "protobuf". Errors:
// InvalidArgument naming the key (absent, or another value).
absl::StatusOr<PayloadFormat> GetFormat(const PluginConfig& config);

// Loads the settings "descriptor_set" (paths separated by commas; relative
// paths are relative to siftd's working directory) and "type" (a message's
// full name, "shop.Order"), both required. Errors: InvalidArgument naming
// the key (absent, empty, a set that is not a valid descriptor set, a type it
// does not define); FailedPrecondition naming the key and file when a
// descriptor set file cannot be read.
absl::StatusOr<ProtoType> LoadProtoType(const PluginConfig& config);

// For format json: InvalidArgument if "type" or "descriptor_set" is set
// (they would be ignored, which hides a mistaken format).
absl::Status CheckNoProtoSettings(const PluginConfig& config);

// `value` split at commas, each part trimmed of spaces; empty parts are
// refused (InvalidArgument naming `key`), as is an empty list.
absl::StatusOr<std::vector<std::string>> SplitList(std::string_view key,
                                                   std::string_view value);

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_PAYLOAD_CONFIG_H_
