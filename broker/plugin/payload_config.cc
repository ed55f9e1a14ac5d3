#include "broker/plugin/payload_config.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "broker/base/absl_view.h"

namespace sift::plugin {
namespace {

std::string Setting(std::string_view key) {
  return absl::StrCat("setting \"", AV(key), "\"");
}

}  // namespace

absl::StatusOr<PayloadFormat> GetFormat(const PluginConfig& config) {
  const std::string* format = config.Find(kFormatKey);
  if (format == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("missing ", Setting(kFormatKey), " (json or protobuf)"));
  }
  if (*format == "json") return PayloadFormat::kJson;
  if (*format == "protobuf") return PayloadFormat::kProtobuf;
  return absl::InvalidArgumentError(absl::StrCat(
      Setting(kFormatKey), ": \"", *format, "\" is not json or protobuf"));
}

absl::StatusOr<std::vector<std::string>> SplitList(std::string_view key,
                                                   std::string_view value) {
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(AV(value), ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          Setting(key), ": \"", AV(value), "\" has an empty entry"));
    }
    parts.emplace_back(part);
  }
  return parts;
}

absl::StatusOr<ProtoType> LoadProtoType(const PluginConfig& config) {
  const std::string* sets = config.Find(kDescriptorSetKey);
  if (sets == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("missing ", Setting(kDescriptorSetKey),
                     " (a file from protoc --descriptor_set_out "
                     "--include_imports)"));
  }
  const std::string* type = config.Find(kTypeKey);
  if (type == nullptr || type->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(type == nullptr ? "missing " : "empty ", Setting(kTypeKey),
                     " (a message's full name)"));
  }
  absl::StatusOr<std::vector<std::string>> paths =
      SplitList(kDescriptorSetKey, *sets);
  if (!paths.ok()) return paths.status();
  absl::StatusOr<std::unique_ptr<DescriptorRegistry>> loaded =
      DescriptorRegistry::Load(*paths);
  if (!loaded.ok()) {
    const std::string message = absl::StrCat(Setting(kDescriptorSetKey), ": ",
                                             loaded.status().message());
    // A file that cannot be read is missing from the host, not a mistake in
    // the setting's value.
    if (absl::IsNotFound(loaded.status())) {
      return absl::FailedPreconditionError(message);
    }
    return absl::InvalidArgumentError(message);
  }
  ProtoType out;
  out.registry = *std::move(loaded);
  absl::StatusOr<const google::protobuf::Message*> prototype =
      out.registry->Prototype(*type);
  if (!prototype.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Setting(kTypeKey), ": message type \"", *type,
                     "\" is not in ", absl::StrJoin(*paths, ", ")));
  }
  out.prototype = *prototype;
  out.descriptor = out.prototype->GetDescriptor();
  return out;
}

absl::Status CheckNoProtoSettings(const PluginConfig& config) {
  for (std::string_view key : {kTypeKey, kDescriptorSetKey}) {
    if (config.Find(key) != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(Setting(key), " is only for format protobuf"));
    }
  }
  return absl::OkStatus();
}

}  // namespace sift::plugin
