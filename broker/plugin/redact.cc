// The "redact" transform (payload_plugins.h): removes or masks payload fields
// named by dotted paths, in JSON or protobuf payloads.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "broker/base/absl_view.h"
#include "broker/plugin/payload_config.h"
#include "broker/plugin/payload_fields.h"
#include "broker/plugin/payload_plugins.h"

namespace sift::plugin {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Reflection;

constexpr std::string_view kFieldsKey = "fields";
constexpr std::string_view kModeKey = "mode";
constexpr std::string_view kMaskKey = "mask";
constexpr std::string_view kDefaultMask = "***";

enum class Mode { kDrop, kMask };

// True if `s` is valid UTF-8. nlohmann writes invalid bytes as U+FFFD under
// error_handler_t::replace and leaves them out under ::ignore, so the two
// outputs differ exactly when `s` has some.
bool IsValidUtf8(const std::string& s) {
  const Json j = s;
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) ==
         j.dump(-1, ' ', false, Json::error_handler_t::ignore);
}

class JsonRedact : public Transform {
 public:
  // `paths`: each a non-empty list of keys.
  JsonRedact(std::vector<std::vector<std::string>> paths, Mode mode,
             std::string mask)
      : paths_(std::move(paths)), mode_(mode), mask_(std::move(mask)) {}

  absl::Status Apply(Message message, const CallContext& context,
                     std::vector<Message>* out) override {
    if (absl::Status s = ParseJsonPayload(message.payload(), &doc_);
        ABSL_PREDICT_FALSE(!s.ok())) {
      return s;
    }
    for (const std::vector<std::string>& path : paths_) Redact(path);
    // `replace` cannot be needed (the parser refuses invalid UTF-8 and the
    // mask was checked) but keeps dump() from ever throwing.
    message.set_payload(
        doc_.dump(-1, ' ', false, Json::error_handler_t::replace));
    out->push_back(std::move(message));
    return absl::OkStatus();
  }

 private:
  void Redact(const std::vector<std::string>& path) {
    Json* parent = &doc_;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      if (!parent->is_object()) return;
      auto it = parent->find(path[i]);
      if (it == parent->end()) return;
      parent = &*it;
    }
    if (!parent->is_object()) return;
    auto it = parent->find(path.back());
    if (it == parent->end()) return;
    Json& value = *it;
    if (mode_ == Mode::kDrop || value.is_object() || value.is_array()) {
      parent->erase(it);
    } else if (value.is_string()) {
      value = mask_;
    } else if (value.is_number()) {
      value = 0;
    } else if (value.is_boolean()) {
      value = false;
    }  // null stays null: it tells nothing
  }

  // Constant after construction.
  const std::vector<std::vector<std::string>> paths_;
  const Mode mode_;
  const std::string mask_;
  Json doc_;  // the current payload
};

class ProtoRedact : public Transform {
 public:
  // `paths`: each from ResolveProtoPath on type.descriptor.
  ProtoRedact(ProtoType type,
              std::vector<std::vector<const FieldDescriptor*>> paths, Mode mode,
              std::string mask)
      : type_(std::move(type)),
        paths_(std::move(paths)),
        mode_(mode),
        mask_(std::move(mask)),
        parser_(*type_.prototype) {}

  absl::Status Apply(Message message, const CallContext& context,
                     std::vector<Message>* out) override {
    absl::StatusOr<google::protobuf::Message*> parsed =
        parser_.Parse(message.payload());
    if (ABSL_PREDICT_FALSE(!parsed.ok())) return parsed.status();
    google::protobuf::Message* m = *parsed;
    for (const auto& path : paths_) Redact(m, path);
    // A field of the wrong wire type, or one the descriptor does not know,
    // is kept as an unknown field and would be written back unredacted.
    m->DiscardUnknownFields();
    std::string binary;
    m->SerializePartialToString(&binary);
    message.set_payload(std::move(binary));
    out->push_back(std::move(message));
    return absl::OkStatus();
  }

 private:
  void Redact(google::protobuf::Message* m,
              const std::vector<const FieldDescriptor*>& path) const {
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      // Do not create a message to redact nothing in it.
      if (!m->GetReflection()->HasField(*m, path[i])) return;
      m = m->GetReflection()->MutableMessage(m, path[i]);
    }
    const FieldDescriptor* f = path.back();
    const Reflection* r = m->GetReflection();
    if (f->is_repeated() || mode_ == Mode::kDrop ||
        f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      r->ClearField(m, f);
      return;
    }
    // Unset stays unset. For a proto3 field without presence HasField is
    // "differs from the default", which the encoding cannot tell from unset:
    // masking it would invent a value.
    if (!r->HasField(*m, f)) return;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        r->SetInt32(m, f, 0);
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        r->SetInt64(m, f, 0);
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        r->SetUInt32(m, f, 0);
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        r->SetUInt64(m, f, 0);
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        r->SetFloat(m, f, 0);
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        r->SetDouble(m, f, 0);
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        r->SetBool(m, f, false);
        break;
      case FieldDescriptor::CPPTYPE_STRING:
        r->SetString(m, f, mask_);
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        r->SetEnum(m, f, f->enum_type()->value(0));
        break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;  // cleared above
    }
  }

  // Constant after construction.
  const ProtoType type_;  // keeps the descriptors below alive
  const std::vector<std::vector<const FieldDescriptor*>> paths_;
  const Mode mode_;
  const std::string mask_;
  ProtoPayloadParser parser_;
};

class RedactFactory : public TransformFactory {
 public:
  std::string_view name() const override { return kRedactName; }

  absl::StatusOr<std::unique_ptr<Transform>> Create(
      const PluginConfig& config) const override {
    if (absl::Status s =
            config.CheckOnly({kFormatKey, kTypeKey, kDescriptorSetKey,
                              kFieldsKey, kModeKey, kMaskKey});
        !s.ok()) {
      return s;
    }
    absl::StatusOr<PayloadFormat> format = GetFormat(config);
    if (!format.ok()) return format.status();
    absl::StatusOr<Mode> mode = GetMode(config);
    if (!mode.ok()) return mode.status();
    absl::StatusOr<std::string> mask = GetMask(config, *mode);
    if (!mask.ok()) return mask.status();
    absl::StatusOr<std::string> fields_text = config.GetString(kFieldsKey);
    if (!fields_text.ok()) return fields_text.status();
    absl::StatusOr<std::vector<std::string>> fields =
        SplitList(kFieldsKey, *fields_text);
    if (!fields.ok()) return fields.status();

    if (*format == PayloadFormat::kJson) {
      if (absl::Status s = CheckNoProtoSettings(config); !s.ok()) return s;
      std::vector<std::vector<std::string>> paths;
      for (const std::string& field : *fields) {
        std::vector<std::string> keys = absl::StrSplit(field, '.');
        for (const std::string& key : keys) {
          if (key.empty()) {
            return absl::InvalidArgumentError(
                absl::StrCat("setting \"", AV(kFieldsKey), "\": path \"", field,
                             "\" has an empty name"));
          }
        }
        paths.push_back(std::move(keys));
      }
      return std::make_unique<JsonRedact>(std::move(paths), *mode,
                                          *std::move(mask));
    }

    absl::StatusOr<ProtoType> type = LoadProtoType(config);
    if (!type.ok()) return type.status();
    std::vector<std::vector<const FieldDescriptor*>> paths;
    for (const std::string& field : *fields) {
      absl::StatusOr<std::vector<const FieldDescriptor*>> path =
          ResolveProtoPath(type->descriptor, field);
      if (!path.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "setting \"", AV(kFieldsKey), "\": ", path.status().message()));
      }
      paths.push_back(*std::move(path));
    }
    return std::make_unique<ProtoRedact>(*std::move(type), std::move(paths),
                                         *mode, *std::move(mask));
  }

 private:
  static absl::StatusOr<Mode> GetMode(const PluginConfig& config) {
    const std::string mode = config.GetString(kModeKey, "drop");
    if (mode == "drop") return Mode::kDrop;
    if (mode == "mask") return Mode::kMask;
    return absl::InvalidArgumentError(absl::StrCat(
        "setting \"", AV(kModeKey), "\": \"", mode, "\" is not drop or mask"));
  }

  static absl::StatusOr<std::string> GetMask(const PluginConfig& config,
                                             Mode mode) {
    const std::string* mask = config.Find(kMaskKey);
    if (mask == nullptr) return std::string(kDefaultMask);
    if (mode != Mode::kMask) {
      return absl::InvalidArgumentError(
          absl::StrCat("setting \"", AV(kMaskKey), "\" is only for mode mask"));
    }
    // Masked strings go into JSON and proto3 string fields, which must be
    // UTF-8.
    if (!IsValidUtf8(*mask)) {
      return absl::InvalidArgumentError(
          absl::StrCat("setting \"", AV(kMaskKey), "\" is not valid UTF-8"));
    }
    return *mask;
  }
};

}  // namespace

std::unique_ptr<TransformFactory> MakeRedactFactory() {
  return std::make_unique<RedactFactory>();
}

}  // namespace sift::plugin
