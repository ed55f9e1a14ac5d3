// Helpers for the payload plugins' tests and benchmark: the test descriptor
// sets (broker/plugin/testdata, built by protoc at build time) and protobuf
// payloads written in text format.
//
// Paths are relative to the working directory of a `bazel test` or
// `bazel run`, where the .pb files are runfiles. Functions crash (CHECK-like,
// with a message) when a test file is missing: a broken build, not a test
// failure to report. Not thread-safe.
#ifndef SIFT_BROKER_PLUGIN_PAYLOAD_TESTING_H_
#define SIFT_BROKER_PLUGIN_PAYLOAD_TESTING_H_

#include <google/protobuf/message.h>

#include <memory>
#include <string>
#include <string_view>

#include "broker/plugin/descriptor_registry.h"

namespace sift::plugin::testing {

// shop.Order, shop.Customer, shop.Address, shop.Tier (with imports).
inline constexpr char kOrderSet[] = "broker/plugin/testdata/order.pb";
// shop.Envelope, which imports order.proto: made with --include_imports
// (holds order.proto too) and without (holds envelope.proto only).
inline constexpr char kEnvelopeSet[] = "broker/plugin/testdata/envelope.pb";
inline constexpr char kEnvelopeOnlySet[] =
    "broker/plugin/testdata/envelope_only.pb";

// The registry of kOrderSet, loaded once.
const DescriptorRegistry& OrderRegistry();

// A new, empty message of `type` (a full name) from OrderRegistry().
std::unique_ptr<google::protobuf::Message> NewMessage(std::string_view type);

// A message of `type` parsed from protobuf text format, e.g.
// "id: 'o1' customer { tier: TIER_GOLD }".
std::unique_ptr<google::protobuf::Message> FromText(std::string_view type,
                                                    std::string_view text);

// The binary encoding of FromText(type, text).
std::string Encode(std::string_view type, std::string_view text);

// The text format of `message`, for readable comparisons.
std::string ToText(const google::protobuf::Message& message);

// The contents of `path`, or a crash.
std::string ReadFileOrDie(const std::string& path);

}  // namespace sift::plugin::testing

#endif  // SIFT_BROKER_PLUGIN_PAYLOAD_TESTING_H_
