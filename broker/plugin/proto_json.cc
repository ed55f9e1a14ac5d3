// The "proto_to_json" and "json_to_proto" transforms (payload_plugins.h).
//
// Both use protobuf's own JSON mapping (google/protobuf/util/json_util.h) on a
// DynamicMessage of the configured type, so what they write is what protoc's
// generated code would read and write.
#include <google/protobuf/util/json_util.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "broker/base/absl_view.h"
#include "broker/plugin/payload_config.h"
#include "broker/plugin/payload_fields.h"
#include "broker/plugin/payload_plugins.h"

namespace sift::plugin {
namespace {

namespace pbutil = google::protobuf::util;

constexpr std::string_view kContentType = "content-type";
constexpr std::string_view kPreserveFieldNamesKey = "preserve_field_names";
constexpr std::string_view kAlwaysPrintPrimitiveFieldsKey =
    "always_print_primitive_fields";
constexpr std::string_view kEnumsAsIntsKey = "enums_as_ints";
constexpr std::string_view kIgnoreUnknownFieldsKey = "ignore_unknown_fields";

std::string StatusText(const pbutil::Status& s) {
  return std::string(s.message().data(), s.message().size());
}

class ProtoToJson : public Transform {
 public:
  ProtoToJson(ProtoType type, pbutil::JsonPrintOptions options)
      : type_(std::move(type)),
        options_(options),
        scratch_(type_.prototype->New()) {}

  absl::Status Apply(Message message, const CallContext& context,
                     std::vector<Message>* out) override {
    if (absl::Status s = ParseProtoPayload(message.payload(), scratch_.get());
        ABSL_PREDICT_FALSE(!s.ok())) {
      return s;
    }
    std::string json;
    if (pbutil::Status s =
            pbutil::MessageToJsonString(*scratch_, &json, options_);
        ABSL_PREDICT_FALSE(!s.ok())) {
      return absl::InvalidArgumentError(
          absl::StrCat("payload cannot be written as JSON: ", StatusText(s)));
    }
    message.set_payload(std::move(json));
    message.SetHeader(kContentType, "application/json");
    out->push_back(std::move(message));
    return absl::OkStatus();
  }

 private:
  const ProtoType type_;  // keeps the descriptors scratch_ uses alive
  const pbutil::JsonPrintOptions options_;
  const std::unique_ptr<google::protobuf::Message> scratch_;
};

class JsonToProto : public Transform {
 public:
  JsonToProto(ProtoType type, pbutil::JsonParseOptions options)
      : type_(std::move(type)),
        options_(options),
        scratch_(type_.prototype->New()) {}

  absl::Status Apply(Message message, const CallContext& context,
                     std::vector<Message>* out) override {
    const std::string_view payload = message.payload();
    if (pbutil::Status s = pbutil::JsonStringToMessage(
            google::protobuf::StringPiece(payload.data(), payload.size()),
            scratch_.get(), options_);
        ABSL_PREDICT_FALSE(!s.ok())) {
      return absl::InvalidArgumentError(
          absl::StrCat("payload is not valid JSON for ",
                       type_.descriptor->full_name(), ": ", StatusText(s)));
    }
    std::string binary;
    if (ABSL_PREDICT_FALSE(!scratch_->SerializeToString(&binary))) {
      // Only a proto2 message missing required fields gets here.
      return absl::InvalidArgumentError(absl::StrCat(
          "payload lacks required fields of ", type_.descriptor->full_name(),
          ": ", scratch_->InitializationErrorString()));
    }
    message.set_payload(std::move(binary));
    message.SetHeader(kContentType, "application/x-protobuf");
    out->push_back(std::move(message));
    return absl::OkStatus();
  }

 private:
  const ProtoType type_;
  const pbutil::JsonParseOptions options_;
  const std::unique_ptr<google::protobuf::Message> scratch_;
};

class ProtoToJsonFactory : public TransformFactory {
 public:
  std::string_view name() const override { return kProtoToJsonName; }

  absl::StatusOr<std::unique_ptr<Transform>> Create(
      const PluginConfig& config) const override {
    if (absl::Status s = config.CheckOnly(
            {kTypeKey, kDescriptorSetKey, kPreserveFieldNamesKey,
             kAlwaysPrintPrimitiveFieldsKey, kEnumsAsIntsKey});
        !s.ok()) {
      return s;
    }
    pbutil::JsonPrintOptions options;
    absl::StatusOr<bool> preserve = config.GetBool(kPreserveFieldNamesKey, true);
    if (!preserve.ok()) return preserve.status();
    absl::StatusOr<bool> always =
        config.GetBool(kAlwaysPrintPrimitiveFieldsKey, false);
    if (!always.ok()) return always.status();
    absl::StatusOr<bool> enums_as_ints = config.GetBool(kEnumsAsIntsKey, false);
    if (!enums_as_ints.ok()) return enums_as_ints.status();
    options.preserve_proto_field_names = *preserve;
    options.always_print_primitive_fields = *always;
    options.always_print_enums_as_ints = *enums_as_ints;
    absl::StatusOr<ProtoType> type = LoadProtoType(config);
    if (!type.ok()) return type.status();
    return std::make_unique<ProtoToJson>(*std::move(type), options);
  }
};

class JsonToProtoFactory : public TransformFactory {
 public:
  std::string_view name() const override { return kJsonToProtoName; }

  absl::StatusOr<std::unique_ptr<Transform>> Create(
      const PluginConfig& config) const override {
    if (absl::Status s = config.CheckOnly(
            {kTypeKey, kDescriptorSetKey, kIgnoreUnknownFieldsKey});
        !s.ok()) {
      return s;
    }
    pbutil::JsonParseOptions options;
    absl::StatusOr<bool> ignore = config.GetBool(kIgnoreUnknownFieldsKey, false);
    if (!ignore.ok()) return ignore.status();
    options.ignore_unknown_fields = *ignore;
    absl::StatusOr<ProtoType> type = LoadProtoType(config);
    if (!type.ok()) return type.status();
    return std::make_unique<JsonToProto>(*std::move(type), options);
  }
};

}  // namespace

std::unique_ptr<TransformFactory> MakeProtoToJsonFactory() {
  return std::make_unique<ProtoToJsonFactory>();
}

std::unique_ptr<TransformFactory> MakeJsonToProtoFactory() {
  return std::make_unique<JsonToProtoFactory>();
}

}  // namespace sift::plugin
