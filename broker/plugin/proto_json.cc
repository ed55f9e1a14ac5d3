// The "proto_to_json" and "json_to_proto" transforms (payload_plugins.h).
//
// Both use protobuf's own JSON mapping (google/protobuf/util/json_util.h), so
// what they write is what protoc's generated code reads and writes. They call
// the transcoders under MessageToJsonString / JsonStringToMessage directly,
// with a TypeResolver made once per plugin: those two wrappers build a new
// resolver for every call when the type is not compiled in (several times the
// cost of the conversion itself; see payload_bench).
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver.h>
#include <google/protobuf/util/type_resolver_util.h>

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
constexpr char kTypeUrlPrefix[] = "type.googleapis.com";

std::string StatusText(const pbutil::Status& s) {
  return std::string(s.message().data(), s.message().size());
}

// What both directions need to transcode one message type.
class Transcoder {
 public:
  explicit Transcoder(ProtoType type)
      : type_(std::move(type)),
        resolver_(pbutil::NewTypeResolverForDescriptorPool(
            kTypeUrlPrefix, &type_.registry->pool())),
        type_url_(
            absl::StrCat(kTypeUrlPrefix, "/", type_.descriptor->full_name())) {}

  const ProtoType& type() const { return type_; }
  pbutil::TypeResolver* resolver() const { return resolver_.get(); }
  const std::string& type_url() const { return type_url_; }

 private:
  const ProtoType type_;  // keeps the pool the resolver reads alive
  const std::unique_ptr<pbutil::TypeResolver> resolver_;
  const std::string type_url_;
};

class ProtoToJson : public Transform {
 public:
  ProtoToJson(ProtoType type, pbutil::JsonPrintOptions options)
      : transcoder_(std::move(type)),
        options_(options),
        parser_(*transcoder_.type().prototype) {}

  absl::Status Apply(Message message, const CallContext& context,
                     std::vector<Message>* out) override {
    // The transcoder below is lenient: it takes truncated or garbled wire
    // data and writes strings that are not UTF-8 as "". Parse first, so a
    // bad payload is an error rather than a wrong JSON document.
    const std::string_view payload = message.payload();
    if (absl::StatusOr<google::protobuf::Message*> parsed =
            parser_.Parse(payload);
        ABSL_PREDICT_FALSE(!parsed.ok())) {
      return parsed.status();
    }
    std::string json;
    google::protobuf::io::ArrayInputStream in(payload.data(),
                                              static_cast<int>(payload.size()));
    google::protobuf::io::StringOutputStream json_out(&json);
    if (pbutil::Status s = pbutil::BinaryToJsonStream(transcoder_.resolver(),
                                                      transcoder_.type_url(),
                                                      &in, &json_out, options_);
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
  const Transcoder transcoder_;
  const pbutil::JsonPrintOptions options_;
  ProtoPayloadParser parser_;
};

class JsonToProto : public Transform {
 public:
  JsonToProto(ProtoType type, pbutil::JsonParseOptions options)
      : transcoder_(std::move(type)), options_(options) {}

  absl::Status Apply(Message message, const CallContext& context,
                     std::vector<Message>* out) override {
    const std::string_view payload = message.payload();
    std::string binary;
    if (pbutil::Status s = pbutil::JsonToBinaryString(
            transcoder_.resolver(), transcoder_.type_url(),
            google::protobuf::StringPiece(payload.data(), payload.size()),
            &binary, options_);
        ABSL_PREDICT_FALSE(!s.ok())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "payload is not valid JSON for ",
          transcoder_.type().descriptor->full_name(), ": ", StatusText(s)));
    }
    message.set_payload(std::move(binary));
    message.SetHeader(kContentType, "application/x-protobuf");
    out->push_back(std::move(message));
    return absl::OkStatus();
  }

 private:
  const Transcoder transcoder_;
  const pbutil::JsonParseOptions options_;
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
    absl::StatusOr<bool> preserve =
        config.GetBool(kPreserveFieldNamesKey, true);
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
    absl::StatusOr<bool> ignore =
        config.GetBool(kIgnoreUnknownFieldsKey, false);
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
