#include "broker/plugin/payload_fields.h"

#include <climits>
#include <utility>

#include "absl/base/optimization.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "broker/base/absl_view.h"

namespace sift::plugin {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Calls fn(component, is_last) for each dot-separated part of `path`, until
// fn returns false. Returns whether it went through all of them.
template <typename Fn>
bool ForEachComponent(std::string_view path, Fn fn) {
  while (true) {
    const size_t dot = path.find('.');
    if (dot == std::string_view::npos) return fn(path, true);
    if (!fn(path.substr(0, dot), false)) return false;
    path.remove_prefix(dot + 1);
  }
}

// Records the parser's message for a payload that failed to parse. Used only
// on that (rare) path: the fast path parses without it and without
// exceptions, and cannot say why it failed.
class ErrorRecorder : public nlohmann::json_sax<Json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& e) override {
    message_ = e.what();
    return false;
  }
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

const FieldDescriptor* FindField(const Descriptor* type,
                                 std::string_view name) {
  // FindFieldByName takes a std::string; field names fit in its inline
  // buffer, so this does not allocate for usual names.
  return type->FindFieldByName(std::string(name));
}

bool HasRequiredFields(const Descriptor* type,
                       absl::flat_hash_set<const Descriptor*>* seen) {
  if (!seen->insert(type).second) return false;  // recursive types
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* f = type->field(i);
    if (f->is_required()) return true;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
        HasRequiredFields(f->message_type(), seen)) {
      return true;
    }
  }
  return false;
}

bool HasRequiredFields(const Descriptor* type) {
  absl::flat_hash_set<const Descriptor*> seen;
  return HasRequiredFields(type, &seen);
}

absl::Status NotAProtoMessage(const Message& m) {
  return absl::InvalidArgumentError(absl::StrCat("payload is not a valid ",
                                                 m.GetDescriptor()->full_name(),
                                                 " protobuf message"));
}

}  // namespace

absl::Status ParseJsonPayload(std::string_view payload, Json* doc) {
  bool too_deep = false;
  // The callback sees every value with its depth (0 for the outermost
  // object or array at its start); a value too deep is discarded (so never
  // built) and fails the parse below.
  Json::parser_callback_t limit_depth = [&too_deep](int depth,
                                                    Json::parse_event_t event,
                                                    Json&) {
    if (depth >= kMaxJsonDepth && (event == Json::parse_event_t::object_start ||
                                   event == Json::parse_event_t::array_start)) {
      too_deep = true;
      return false;
    }
    return true;
  };
  *doc = Json::parse(payload.begin(), payload.end(), limit_depth,
                     /*allow_exceptions=*/false);
  if (too_deep) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload is not valid JSON: nests deeper than ",
                     kMaxJsonDepth, " levels"));
  }
  if (doc->is_discarded()) {
    ErrorRecorder recorder;
    Json::sax_parse(payload.begin(), payload.end(), &recorder);
    return absl::InvalidArgumentError(absl::StrCat(
        "payload is not valid JSON: ",
        recorder.message().empty() ? "parse error" : recorder.message()));
  }
  return absl::OkStatus();
}

ProtoPayloadParser::ProtoPayloadParser(const Message& prototype)
    : check_required_(HasRequiredFields(prototype.GetDescriptor())),
      message_(prototype.New()) {}

absl::StatusOr<Message*> ProtoPayloadParser::Parse(std::string_view payload) {
  Message* m = message_.get();
  if (ABSL_PREDICT_FALSE(payload.size() > static_cast<size_t>(INT_MAX))) {
    return NotAProtoMessage(*m);
  }
  const int size = static_cast<int>(payload.size());
  const bool ok = check_required_
                      ? m->ParseFromArray(payload.data(), size)
                      : m->ParsePartialFromArray(payload.data(), size);
  if (ABSL_PREDICT_FALSE(!ok)) return NotAProtoMessage(*m);
  return m;
}

const Json* JsonFieldSource::Find(const Json& doc, std::string_view path) {
  const Json* node = &doc;
  const bool found = ForEachComponent(path, [&](std::string_view key, bool) {
    if (!node->is_object()) return false;
    auto it = node->find(key);
    if (it == node->end()) return false;
    node = &*it;
    return true;
  });
  return found ? node : nullptr;
}

std::optional<FieldValue> JsonFieldSource::Get(std::string_view path) const {
  const Json* v = Find(doc_, path);
  if (v == nullptr) return std::nullopt;
  switch (v->type()) {
    case Json::value_t::number_integer:
      return FieldValue::Number(
          static_cast<double>(v->get_ref<const Json::number_integer_t&>()));
    case Json::value_t::number_unsigned:
      return FieldValue::Number(
          static_cast<double>(v->get_ref<const Json::number_unsigned_t&>()));
    case Json::value_t::number_float:
      return FieldValue::Number(v->get_ref<const Json::number_float_t&>());
    case Json::value_t::string:
      return FieldValue::String(v->get_ref<const Json::string_t&>());
    case Json::value_t::boolean:
      return FieldValue::Bool(v->get_ref<const Json::boolean_t&>());
    default:  // null, object, array, binary, discarded
      return std::nullopt;
  }
}

std::optional<FieldValue> ProtoFieldSource::Get(std::string_view path) const {
  const Message* message = &message_;
  const FieldDescriptor* field = nullptr;
  const bool found =
      ForEachComponent(path, [&](std::string_view name, bool last) {
        field = FindField(message->GetDescriptor(), name);
        if (field == nullptr || field->is_repeated()) return false;
        const Reflection* r = message->GetReflection();
        if (field->has_presence() && !r->HasField(*message, field)) {
          return false;
        }
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          if (last) return false;  // a message is not a value
          message = &r->GetMessage(*message, field);
          return true;
        }
        return last;  // a scalar ends the path
      });
  if (!found) return std::nullopt;
  const Reflection* r = message->GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return FieldValue::Number(r->GetInt32(*message, field));
    case FieldDescriptor::CPPTYPE_INT64:
      return FieldValue::Number(
          static_cast<double>(r->GetInt64(*message, field)));
    case FieldDescriptor::CPPTYPE_UINT32:
      return FieldValue::Number(r->GetUInt32(*message, field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return FieldValue::Number(
          static_cast<double>(r->GetUInt64(*message, field)));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return FieldValue::Number(r->GetFloat(*message, field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return FieldValue::Number(r->GetDouble(*message, field));
    case FieldDescriptor::CPPTYPE_BOOL:
      return FieldValue::Bool(r->GetBool(*message, field));
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s = r->GetStringReference(*message, field, &scratch);
      return FieldValue::String(s);
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int number = r->GetEnumValue(*message, field);
      const EnumValueDescriptor* value =
          field->enum_type()->FindValueByNumber(number);
      if (value == nullptr) return FieldValue::Number(number);
      return FieldValue::String(value->name());
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;  // excluded above
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<const FieldDescriptor*>> ResolveProtoPath(
    const Descriptor* type, std::string_view path) {
  std::vector<const FieldDescriptor*> fields;
  std::string error;
  ForEachComponent(path, [&](std::string_view name, bool last) {
    const FieldDescriptor* field = FindField(type, name);
    if (field == nullptr) {
      error = absl::StrCat("\"", AV(name), "\" is not a field of ",
                           type->full_name());
      return false;
    }
    fields.push_back(field);
    if (last) return true;
    if (field->is_repeated() ||
        field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      error = absl::StrCat("\"", AV(name), "\" in ", type->full_name(),
                           " is not a singular message field, so the path "
                           "cannot go through it");
      return false;
    }
    type = field->message_type();
    return true;
  });
  if (!error.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("path \"", AV(path), "\": ", error));
  }
  return fields;
}

}  // namespace sift::plugin
