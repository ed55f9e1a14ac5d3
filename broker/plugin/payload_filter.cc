// The "payload_filter" filter (payload_plugins.h).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "broker/base/absl_view.h"
#include "broker/plugin/expression.h"
#include "broker/plugin/payload_config.h"
#include "broker/plugin/payload_fields.h"
#include "broker/plugin/payload_plugins.h"

namespace sift::plugin {
namespace {

constexpr std::string_view kExprKey = "expr";

class JsonPayloadFilter : public Filter {
 public:
  explicit JsonPayloadFilter(Expression expr) : expr_(std::move(expr)) {}

  absl::StatusOr<Verdict> Apply(const Message& message,
                                const CallContext& context) override {
    if (absl::Status s = ParseJsonPayload(message.payload(), &doc_);
        ABSL_PREDICT_FALSE(!s.ok())) {
      return s;
    }
    return expr_.Evaluate(JsonFieldSource(doc_))
               ? Verdict::Keep()
               : Verdict::Drop(kPayloadFilterName);
  }

 private:
  const Expression expr_;
  Json doc_;  // the current payload
};

class ProtoPayloadFilter : public Filter {
 public:
  ProtoPayloadFilter(Expression expr, ProtoType type)
      : expr_(std::move(expr)),
        type_(std::move(type)),
        parser_(*type_.prototype) {}

  absl::StatusOr<Verdict> Apply(const Message& message,
                                const CallContext& context) override {
    absl::StatusOr<google::protobuf::Message*> parsed =
        parser_.Parse(message.payload());
    if (ABSL_PREDICT_FALSE(!parsed.ok())) return parsed.status();
    return expr_.Evaluate(ProtoFieldSource(**parsed))
               ? Verdict::Keep()
               : Verdict::Drop(kPayloadFilterName);
  }

 private:
  const Expression expr_;
  const ProtoType type_;  // keeps the descriptors parser_ uses alive
  ProtoPayloadParser parser_;
};

// OK if `path` leads to a singular scalar field of `type`.
absl::Status CheckValuePath(const google::protobuf::Descriptor* type,
                            const std::string& path) {
  absl::StatusOr<std::vector<const google::protobuf::FieldDescriptor*>> fields =
      ResolveProtoPath(type, path);
  if (!fields.ok()) return fields.status();
  const google::protobuf::FieldDescriptor* last = fields->back();
  if (last->is_repeated() ||
      last->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
    return absl::InvalidArgumentError(absl::StrCat(
        "path \"", path, "\": ", last->full_name(), " is a ",
        last->is_repeated() ? "repeated" : "message",
        " field, which has no value to compare (name a field inside it)"));
  }
  return absl::OkStatus();
}

class PayloadFilterFactory : public FilterFactory {
 public:
  std::string_view name() const override { return kPayloadFilterName; }

  absl::StatusOr<std::unique_ptr<Filter>> Create(
      const PluginConfig& config) const override {
    if (absl::Status s = config.CheckOnly(
            {kExprKey, kFormatKey, kTypeKey, kDescriptorSetKey});
        !s.ok()) {
      return s;
    }
    absl::StatusOr<PayloadFormat> format = GetFormat(config);
    if (!format.ok()) return format.status();
    absl::StatusOr<std::string> text = config.GetString(kExprKey);
    if (!text.ok()) return text.status();
    absl::StatusOr<Expression> expr = Expression::Parse(*text);
    if (!expr.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "setting \"", AV(kExprKey), "\": ", expr.status().message()));
    }
    if (*format == PayloadFormat::kJson) {
      if (absl::Status s = CheckNoProtoSettings(config); !s.ok()) return s;
      return std::make_unique<JsonPayloadFilter>(*std::move(expr));
    }
    absl::StatusOr<ProtoType> type = LoadProtoType(config);
    if (!type.ok()) return type.status();
    // A path that names no field, or a field with no value to compare,
    // would read as missing on every message: almost surely a mistake, so
    // refuse it now.
    for (const std::string& path : expr->fields()) {
      if (absl::Status s = CheckValuePath(type->descriptor, path); !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("setting \"", AV(kExprKey), "\": ", s.message()));
      }
    }
    return std::make_unique<ProtoPayloadFilter>(*std::move(expr),
                                                *std::move(type));
  }
};

}  // namespace

std::unique_ptr<FilterFactory> MakePayloadFilterFactory() {
  return std::make_unique<PayloadFilterFactory>();
}

}  // namespace sift::plugin
