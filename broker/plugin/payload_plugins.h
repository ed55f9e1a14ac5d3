// Payload-aware plugins: they read the payload as JSON or protobuf.
//
//   payload_filter  (filter)     keeps messages whose payload fields satisfy
//                                an expression (broker/plugin/expression.h)
//   proto_to_json   (transform)  protobuf payload -> JSON
//   json_to_proto   (transform)  JSON payload -> protobuf
//   redact          (transform)  removes or masks payload fields
//
// Settings common to them (payload_config.h):
//   format          json | protobuf (payload_filter and redact; required)
//   type            the protobuf message's full name, e.g. shop.Order
//                   (required for protobuf; refused with format json)
//   descriptor_set  file(s) from `protoc --descriptor_set_out=F
//                   --include_imports`, separated by commas (with type)
//
// payload_filter: `expr` (required) is the expression; field paths in it are
//   dotted names (payload_fields.h says what each type reads as). With
//   protobuf, every path must name a field of `type` reachable through
//   singular message fields, or Create refuses it. Drop reason:
//   "payload_filter".
// proto_to_json: `preserve_field_names` (default true: field names as in the
//   .proto file; false: lowerCamelCase JSON names),
//   `always_print_primitive_fields` (default false: proto3 fields at their
//   default are left out), `enums_as_ints` (default false: enum names).
//   Sets header content-type: application/json.
// json_to_proto: `ignore_unknown_fields` (default false: a JSON key that is
//   no field of `type` fails the message). Accepts both field-name styles.
//   Sets header content-type: application/x-protobuf.
// redact: `fields` (required) dotted paths, separated by commas; `mode` drop
//   (default: the field is removed) or mask (strings and bytes become `mask`,
//   default "***"; numbers 0; bools false; enums their first value); objects,
//   arrays, messages and repeated fields are removed in either mode; JSON
//   null stays null. Absent fields are left absent, and so are proto3 fields
//   without presence at their default (unset on the wire: masking "" would
//   invent a value). With protobuf, paths are checked against `type`
//   at Create, and unknown fields are removed from the output (they cannot be
//   told apart from what should be redacted); dropping a proto2 required
//   field leaves a message strict parsers refuse (use mask). JSON output is
//   compact, keys in their original order.
//
// Every plugin refuses unknown settings and bad values with InvalidArgument
// naming the setting; an unreadable descriptor set is FailedPrecondition.
// Per message, a payload that does not parse as the format fails the message
// with InvalidArgument ("payload is not valid JSON: ...", "payload is not a
// valid shop.Order protobuf message"), which siftd dead-letters.
//
// Cost per message (payload_bench, CPU time on the 2-core dev VM, one order
// as 154 B of JSON or 62 B of protobuf): payload_filter ~4.5 us on JSON (the
// DOM parse is most of it) and ~2 us on protobuf (reflective DynamicMessage
// parse); proto_to_json ~11 us and json_to_proto ~15 us (protobuf 3.21's JSON
// transcoder rebuilds its type tables per call); redact ~5 us either way.
// Run //broker/plugin:payload_bench before changing them.
//
// Thread-safety: factories are stateless. Each Filter/Transform keeps scratch
// messages it reuses between calls, so it runs on one thread (the routing
// thread), as plugin.h requires.
#ifndef SIFT_BROKER_PLUGIN_PAYLOAD_PLUGINS_H_
#define SIFT_BROKER_PLUGIN_PAYLOAD_PLUGINS_H_

#include <memory>
#include <string_view>

#include "broker/plugin/plugin.h"

namespace sift::plugin {

inline constexpr std::string_view kPayloadFilterName = "payload_filter";
inline constexpr std::string_view kProtoToJsonName = "proto_to_json";
inline constexpr std::string_view kJsonToProtoName = "json_to_proto";
inline constexpr std::string_view kRedactName = "redact";

std::unique_ptr<FilterFactory> MakePayloadFilterFactory();
std::unique_ptr<TransformFactory> MakeProtoToJsonFactory();
std::unique_ptr<TransformFactory> MakeJsonToProtoFactory();
std::unique_ptr<TransformFactory> MakeRedactFactory();

}  // namespace sift::plugin

#endif  // SIFT_BROKER_PLUGIN_PAYLOAD_PLUGINS_H_
