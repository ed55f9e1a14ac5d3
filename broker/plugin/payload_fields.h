// Payload fields for expressions: FieldSources over a parsed JSON document and
// over a parsed protobuf message, and the parsing and path helpers the payload
// plugins (payload_plugins.h) share.
//
// A path is field names joined by dots ("customer.tier"); each name but the
// last must lead to a nested object (JSON) or a singular message field
// (protobuf). A JSON key that holds a dot cannot be reached; arrays and
// repeated fields are not walked.
//
// What a path yields (nullopt means "no such field": every comparison with it
// is false, as for an absent header):
//  - JSON: numbers -> Number (64-bit integers beyond 2^53 lose precision),
//    strings -> String, true/false -> Bool; null, arrays and objects ->
//    nullopt.
//  - protobuf: every numeric scalar (int32/64, uint32/64, sint, fixed, float,
//    double) -> Number (64-bit beyond 2^53 lose precision), string and bytes
//    -> String (bytes as they are), bool -> Bool, enum -> String of the value's
//    name (Number if the value has no name in the descriptor: an open enum
//    carrying a newer value). Repeated fields, maps and messages -> nullopt.
//    Presence follows protobuf's has_presence(): a proto3 scalar without
//    `optional` has no presence and reads as its default (0, "", false, the
//    enum's first value) when unset, as JetStream-style consumers expect; an
//    unset field with presence (message fields, proto3 `optional`, oneof
//    members, proto2 fields) is nullopt, and so is any path through an unset
//    message field.
//
// Thread-safety: sources are made per message on the routing thread and do
// not own what they read; not thread-safe.
#ifndef SIFT_BROKER_PLUGIN_PAYLOAD_FIELDS_H_
#define SIFT_BROKER_PLUGIN_PAYLOAD_FIELDS_H_

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broker/plugin/field_source.h"

namespace sift::plugin {

// JSON documents keep their keys in the order they came in, so a rewritten
// payload (redact) reads like the original.
using Json = nlohmann::ordered_json;

// Deepest nesting of objects and arrays ParseJsonPayload accepts; as
// protobuf's default recursion limit. Bounds the stack that writing a
// document back (Json::dump, which recurses) may take.
inline constexpr int kMaxJsonDepth = 100;

// Parses `payload` as one JSON value into *doc (replacing what it held).
// Errors: InvalidArgument "payload is not valid JSON: <parser's message>",
// or "... nests deeper than 100 levels".
absl::Status ParseJsonPayload(std::string_view payload, Json* doc);

// Parses protobuf payloads of one type into a message it keeps and reuses.
// Not thread-safe: one per plugin instance.
class ProtoPayloadParser {
 public:
  // REQUIRES: `prototype` (a DescriptorRegistry's) outlives the parser.
  explicit ProtoPayloadParser(const google::protobuf::Message& prototype);

  // Parses `payload`; the message is valid until the next Parse. Errors:
  // InvalidArgument "payload is not a valid <type> protobuf message" (bad
  // wire format, invalid UTF-8 in a proto3 string, missing proto2 required
  // fields).
  absl::StatusOr<google::protobuf::Message*> Parse(std::string_view payload);

 private:
  // Whether the type has proto2 required fields anywhere inside. Checking
  // them walks the whole message by reflection (a quarter of a small
  // message's parse), so types without any (every proto3 type) skip it.
  const bool check_required_;
  const std::unique_ptr<google::protobuf::Message> message_;
};

class JsonFieldSource : public FieldSource {
 public:
  // `doc` must outlive the source.
  explicit JsonFieldSource(const Json& doc) : doc_(doc) {}
  std::optional<FieldValue> Get(std::string_view path) const override;

  // The value at `path`, or nullptr (also for a path through a non-object).
  static const Json* Find(const Json& doc, std::string_view path);

 private:
  const Json& doc_;
};

class ProtoFieldSource : public FieldSource {
 public:
  // `message` must outlive the source.
  explicit ProtoFieldSource(const google::protobuf::Message& message)
      : message_(message) {}
  std::optional<FieldValue> Get(std::string_view path) const override;

 private:
  const google::protobuf::Message& message_;
};

// The fields `path` names from `type` down (field names as in the .proto
// file), checked once at config time: each but the last a singular message
// field. Errors: InvalidArgument naming the first component that is not a
// field, or that the path cannot go through.
absl::StatusOr<std::vector<const google::protobuf::FieldDescriptor*>>
ResolveProtoPath(const google::protobuf::Descriptor* type,
                 std::string_view path);

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_PAYLOAD_FIELDS_H_
